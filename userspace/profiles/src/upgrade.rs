//! Upgrade rules: which firmware a device of a model at a version is told to load.
//!
//! The first `[[upgrade_rule]]` whose model and from-version patterns match, and whose target
//! version differs from the device's, wins. A device at the target version gets no upgrade
//! rule (it would reflash the same image on every resync otherwise).
//!
//! The model and version come from the request: `pn` / `swver` query parameters (a profile
//! rule such as `http://prov/p/$MA.cfg?pn=$PN&swver=$SWVER` sends them) or the User-Agent, in
//! the forms SPA-style devices send (`Linksys/SPA2102-5.2.5 (SN)`, `Cisco-SPA504G/7.5.5`).

use provd_config::UpgradeRule;

/// The rule for a model at a version, if any.
pub fn select<'a>(rules: &'a [UpgradeRule], model: &str, version: &str) -> Option<&'a UpgradeRule> {
    rules.iter().find(|r| {
        r.model.matches(model.as_bytes())
            && r.from_version.matches(version.as_bytes())
            && r.version != version
    })
}

/// (model, version) from a User-Agent, when it has one of the SPA-style forms.
pub fn from_user_agent(ua: &str) -> Option<(&str, &str)> {
    let token = ua.split_whitespace().next()?;
    let (left, right) = token.split_once('/')?;
    if let Some((model, version)) = right.rsplit_once('-')
        && !model.is_empty()
        && version.starts_with(|c: char| c.is_ascii_digit())
    {
        return Some((model, version));
    }
    let model = left.split_once('-').map_or(left, |(_, m)| m);
    (!model.is_empty() && !right.is_empty()).then_some((model, right))
}

#[cfg(test)]
mod tests {
    use super::*;
    use provd_config::Glob;

    fn rule(model: &str, from: &str, version: &str) -> UpgradeRule {
        UpgradeRule {
            model: Glob::new(model),
            from_version: Glob::new(from),
            firmware: format!("{model}-{version}.bin"),
            version: version.into(),
        }
    }

    #[test]
    fn first_match_and_not_to_self() {
        let rules = [
            rule("SPA2102", "5.1.*", "5.2.5"),
            rule("SPA*", "*", "6.0.0"),
        ];
        assert_eq!(select(&rules, "SPA2102", "5.1.3").unwrap().version, "5.2.5");
        assert_eq!(select(&rules, "SPA2102", "5.2.5").unwrap().version, "6.0.0");
        assert!(select(&rules, "SPA2102", "6.0.0").is_none());
        assert!(select(&rules, "G802", "1.0").is_none());
    }

    #[test]
    fn user_agents() {
        assert_eq!(
            from_user_agent("Linksys/SPA2102-5.2.5 (SN0015CF123456)"),
            Some(("SPA2102", "5.2.5"))
        );
        assert_eq!(
            from_user_agent("Cisco-SPA504G/7.5.5"),
            Some(("SPA504G", "7.5.5"))
        );
        assert_eq!(from_user_agent("curl/8.1.2"), Some(("curl", "8.1.2")));
        assert_eq!(from_user_agent("nothing"), None);
        assert_eq!(from_user_agent(""), None);
        assert_eq!(from_user_agent("/"), None);
    }
}
