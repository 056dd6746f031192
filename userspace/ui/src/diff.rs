//! Line diffs for the pages (a device's file now against with another tier; two template
//! versions), as rows a template colours: changed lines with a little context.

use serde::Serialize;
use similar::{ChangeTag, TextDiff};

/// One row of a diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Row {
    /// `add`, `del`, `same`, or `gap` (unchanged lines left out).
    pub(crate) kind: &'static str,
    pub(crate) text: String,
}

/// The rows of `old` → `new`, keeping `context` unchanged lines around each change.
pub(crate) fn lines(old: &str, new: &str, context: usize) -> Vec<Row> {
    // A missing newline at the end is not a change anyone wants to see.
    let eol = |s: &str| {
        if s.is_empty() || s.ends_with('\n') {
            s.to_owned()
        } else {
            format!("{s}\n")
        }
    };
    let (old, new) = (eol(old), eol(new));
    let d = TextDiff::from_lines(&old, &new);
    let mut out = Vec::new();
    for (i, group) in d.grouped_ops(context).iter().enumerate() {
        if i > 0 {
            out.push(Row {
                kind: "gap",
                text: "…".into(),
            });
        }
        for op in group {
            for c in d.iter_changes(op) {
                out.push(Row {
                    kind: match c.tag() {
                        ChangeTag::Insert => "add",
                        ChangeTag::Delete => "del",
                        ChangeTag::Equal => "same",
                    },
                    text: c.value().trim_end_matches(['\n', '\r']).to_owned(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_lines_are_marked_with_their_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\n";
        let new = "a\nb\nc\nD\ne\nf\ng\n";
        let rows = lines(old, new, 1);
        let kinds: Vec<(&str, &str)> = rows.iter().map(|r| (r.kind, r.text.as_str())).collect();
        assert_eq!(
            kinds,
            [("same", "c"), ("del", "d"), ("add", "D"), ("same", "e")]
        );
        assert!(lines(old, old, 3).is_empty());
        assert!(
            lines("a\nb\n", "a\nb", 3).is_empty(),
            "the last newline is no change"
        );
    }
}
