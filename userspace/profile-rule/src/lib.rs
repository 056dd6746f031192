//! provd-profile-rule: the macro language of Sipura/Linksys/Cisco SPA devices and their clones
//! (Flying Voice ATAs), and the profile-rule grammar that uses it.
//!
//! A device expands `$MA`, `$(MAU)`, `$(MA:6:6)`… in its `Profile_Rule` and `Upgrade_Rule`
//! parameters once, then fetches the resulting URL. provd runs the same expander to predict the
//! URL a device will ask for, to render the profile-rule values it hands out, and inside the
//! profiles it renders. The rules are those of `shared/spec/macros.md` §2, including its
//! conventions where the vendor text is silent; see [`expand`].
//!
//! Everything here is total: any input string expands (malformed macros are copied literally)
//! and [`ProfileRule::parse`] returns a typed error, never a panic.

mod expand;
mod rule;
mod vars;

pub use expand::{escape, expand, expand_with_secrets};
pub use rule::{ProfileRule, Qualifier, RuleError, RuleTerm, Scheme, Url, expand_rule};
pub use vars::{Variables, is_known_name};
