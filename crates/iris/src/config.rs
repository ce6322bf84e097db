//! The names the bindings accept for policies and strategies, parsed once for all of them.

use iris_mailbox::OverflowPolicy;
use iris_supervisor::Strategy;

use crate::actor::Pid;

/// Parses an overflow policy name as the bindings spell it (`"dropnew"`, `"dropold"`,
/// `"redirect"`, `"spill"`, `"block"`; case, `_` and `-` ignored). `redirect` and `spill`
/// need a target PID.
pub fn parse_overflow_policy(name: &str, target: Option<Pid>) -> Result<OverflowPolicy, String> {
    let need = |what: &str| target.ok_or_else(|| format!("policy {what:?} needs a target pid"));
    match name.to_ascii_lowercase().replace(['_', '-'], "").as_str() {
        "dropnew" => Ok(OverflowPolicy::DropNew),
        "dropold" => Ok(OverflowPolicy::DropOld),
        "block" => Ok(OverflowPolicy::Block),
        "redirect" => need("redirect").map(OverflowPolicy::Redirect),
        "spill" => need("spill").map(OverflowPolicy::Spill),
        _ => Err(format!(
            "unknown overflow policy {name:?}; expected one of \"dropnew\", \"dropold\", \
             \"redirect\", \"spill\", \"block\""
        )),
    }
}

/// Parses the strategy names of the bindings: `"restartone"` (one-for-one), `"restartall"`
/// (one-for-all), `"restforone"` (rest-for-one); OTP's spellings are accepted too.
pub fn parse_strategy(name: &str) -> Option<Strategy> {
    match name.to_ascii_lowercase().replace(['_', '-'], "").as_str() {
        "restartone" | "oneforone" => Some(Strategy::OneForOne),
        "restartall" | "oneforall" => Some(Strategy::OneForAll),
        "restforone" => Some(Strategy::RestForOne),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_like_the_bindings_spell_them() {
        assert_eq!(
            parse_overflow_policy("dropnew", None),
            Ok(OverflowPolicy::DropNew)
        );
        assert_eq!(
            parse_overflow_policy("Drop_Old", None),
            Ok(OverflowPolicy::DropOld)
        );
        assert_eq!(
            parse_overflow_policy("block", Some(3)),
            Ok(OverflowPolicy::Block)
        );
        assert_eq!(
            parse_overflow_policy("redirect", Some(7)),
            Ok(OverflowPolicy::Redirect(7))
        );
        assert_eq!(
            parse_overflow_policy("spill", Some(8)),
            Ok(OverflowPolicy::Spill(8))
        );
        assert!(parse_overflow_policy("redirect", None).is_err());
        assert!(parse_overflow_policy("nope", None).is_err());
        assert_eq!(parse_strategy("one_for_all"), Some(Strategy::OneForAll));
    }
}
