//! Kafka's `ssl.principal.mapping.rules`: how a client certificate's
//! subject becomes a principal name. Its own module so the config can
//! check the rules without depending on the TLS listener.

/// Why mapping rules do not parse, or do not apply to a subject.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    /// `tls.principal_mapping_rules` does not parse.
    #[error("invalid rule `{rule}`: {message}")]
    Rule {
        /// The rule as written.
        rule: String,
        /// What is wrong.
        message: String,
    },
    /// No mapping rule matched a client certificate's subject (Kafka fails
    /// the authentication then).
    #[error("no principal mapping rule applies to `{0}`")]
    NoMatchingRule(String),
}

/// Kafka's `ssl.principal.mapping.rules`: a comma-separated list of
/// `RULE:pattern/replacement/[LU]` and `DEFAULT`, tried in order. A rule
/// applies when its pattern matches the whole subject; the name is the
/// subject with the pattern replaced (`$1` for groups), lower- or
/// upper-cased with `L` or `U`. `DEFAULT` is the subject unchanged.
#[derive(Debug, Clone)]
pub struct PrincipalMapper {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
enum Rule {
    Default,
    Replace {
        pattern: regex::Regex,
        /// The replacement in the `regex` crate's syntax.
        replacement: String,
        case: Case,
    },
}

#[derive(Debug, Clone, Copy)]
enum Case {
    Keep,
    Lower,
    Upper,
}

/// Longest `ssl.principal.mapping.rules` pattern compiled: a bound on the
/// memory a mistaken rule can make the regex engine take.
const MAX_RULE_REGEX_BYTES: usize = 1 << 20;

impl PrincipalMapper {
    /// Parses the rules as Kafka does; an empty or malformed rule is an
    /// error naming it.
    pub fn parse(rules: &str) -> Result<PrincipalMapper, MappingError> {
        let mut parsed = Vec::new();
        let mut rest = rules.trim_start();
        while !rest.is_empty() {
            let (rule, after) = parse_rule(rest)?;
            parsed.push(rule);
            rest = after.trim_start();
            if let Some(next) = rest.strip_prefix(',') {
                rest = next.trim_start();
                if rest.is_empty() {
                    return Err(MappingError::Rule {
                        rule: rules.to_owned(),
                        message: "ends with a comma".to_owned(),
                    });
                }
            } else if !rest.is_empty() {
                return Err(MappingError::Rule {
                    rule: rest.to_owned(),
                    message: "unexpected text after a rule (rules are separated by commas)"
                        .to_owned(),
                });
            }
        }
        if parsed.is_empty() {
            return Err(MappingError::Rule {
                rule: rules.to_owned(),
                message: "names no rule (the default is DEFAULT)".to_owned(),
            });
        }
        Ok(PrincipalMapper { rules: parsed })
    }

    /// The principal name for subject `dn`: the first rule that applies.
    pub fn map(&self, dn: &str) -> Result<String, MappingError> {
        for rule in &self.rules {
            match rule {
                Rule::Default => return Ok(dn.to_owned()),
                Rule::Replace {
                    pattern,
                    replacement,
                    case,
                } => {
                    // Java's `matches()`: the pattern must cover the whole
                    // subject.
                    let whole = pattern
                        .find(dn)
                        .is_some_and(|m| m.start() == 0 && m.end() == dn.len());
                    if !whole {
                        continue;
                    }
                    let name = pattern.replace_all(dn, replacement.as_str()).into_owned();
                    return Ok(match case {
                        Case::Keep => name,
                        Case::Lower => name.to_lowercase(),
                        Case::Upper => name.to_uppercase(),
                    });
                }
            }
        }
        Err(MappingError::NoMatchingRule(dn.to_owned()))
    }
}

/// Parses one rule at the start of `text`; returns it and the text after.
fn parse_rule(text: &str) -> Result<(Rule, &str), MappingError> {
    if let Some(rest) = text.strip_prefix("DEFAULT") {
        return Ok((Rule::Default, rest));
    }
    let bad = |message: &str| MappingError::Rule {
        rule: text.to_owned(),
        message: message.to_owned(),
    };
    let Some(rest) = text.strip_prefix("RULE:") else {
        return Err(bad("a rule is DEFAULT or RULE:pattern/replacement/[LU]"));
    };
    let (pattern, rest) = until_slash(rest).ok_or_else(|| bad("the pattern has no closing `/`"))?;
    let (replacement, rest) =
        until_slash(rest).ok_or_else(|| bad("the replacement has no closing `/`"))?;
    let (case, rest) = match rest.chars().next() {
        Some('L') => (Case::Lower, &rest[1..]),
        Some('U') => (Case::Upper, &rest[1..]),
        _ => (Case::Keep, rest),
    };
    let compiled = regex::RegexBuilder::new(pattern)
        .size_limit(MAX_RULE_REGEX_BYTES)
        .build()
        .map_err(|e| bad(&format!("bad pattern: {e}")))?;
    let replacement = java_replacement(replacement, compiled.captures_len());
    Ok((
        Rule::Replace {
            pattern: compiled,
            replacement,
            case,
        },
        rest,
    ))
}

/// Splits `text` at its first `/` not escaped by `\`; the part before
/// keeps its escapes (the regex reads them).
fn until_slash(text: &str) -> Option<(&str, &str)> {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '/' => return Some((&text[..i], &text[i + 1..])),
            _ => {}
        }
    }
    None
}

/// Translates a Java `replaceAll` replacement (`$1`, `\x` for a literal
/// x) to the `regex` crate's syntax (`${1}`, `$$` for a literal `$`).
/// Java reads a group number's digits while the number stays a group.
pub(crate) fn java_replacement(java: &str, groups: usize) -> String {
    let mut out = String::with_capacity(java.len() + 8);
    let mut chars = java.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(other) => out.push(other),
                None => {}
            },
            '$' if chars.peek().is_some_and(char::is_ascii_digit) => {
                // The first digit always; later ones while the number
                // stays a group (`groups` counts group 0 too).
                let mut group = chars.next().and_then(|d| d.to_digit(10)).unwrap_or(0) as usize;
                while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                    let next = group * 10 + d as usize;
                    if next >= groups {
                        break;
                    }
                    group = next;
                    chars.next();
                }
                out.push_str(&format!("${{{group}}}"));
            }
            '$' if chars.peek() == Some(&'{') => out.push('$'),
            '$' => out.push_str("$$"),
            other => out.push(other),
        }
    }
    out
}
