//! Linear scans that bound nesting before a recursive parser sees the text.
//!
//! `serde_json` stops at 128 levels, but `apache-avro` and `protox` walk
//! what they parse recursively, and so do our checkers. One pass over the
//! bytes with a counter is cheap and makes every later recursion bounded.

use crate::{MAX_NESTING_DEPTH, SchemaError};

/// Refuses JSON text whose `{`/`[` nesting exceeds [`MAX_NESTING_DEPTH`].
/// Brackets inside strings do not count. The text need not be valid JSON:
/// the parser that runs next reports syntax errors.
pub(crate) fn check_json_depth(text: &str) -> Result<(), SchemaError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for byte in text.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_NESTING_DEPTH {
                    return Err(SchemaError::TooDeep {
                        limit: MAX_NESTING_DEPTH,
                    });
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Refuses `.proto` text whose `{`, `[`, `(`, `<` nesting exceeds
/// [`MAX_NESTING_DEPTH`]. Strings and comments do not count.
pub(crate) fn check_proto_depth(text: &str) -> Result<(), SchemaError> {
    #[derive(PartialEq)]
    enum State {
        Code,
        String(u8),
        Escape(u8),
        LineComment,
        BlockComment,
    }
    let bytes = text.as_bytes();
    let mut state = State::Code;
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        let next = bytes.get(i + 1).copied();
        state = match state {
            State::Code => match byte {
                b'"' | b'\'' => State::String(byte),
                b'/' if next == Some(b'/') => {
                    i += 1;
                    State::LineComment
                }
                b'/' if next == Some(b'*') => {
                    i += 1;
                    State::BlockComment
                }
                b'{' | b'[' | b'(' | b'<' => {
                    depth += 1;
                    if depth > MAX_NESTING_DEPTH {
                        return Err(SchemaError::TooDeep {
                            limit: MAX_NESTING_DEPTH,
                        });
                    }
                    State::Code
                }
                b'}' | b']' | b')' | b'>' => {
                    depth = depth.saturating_sub(1);
                    State::Code
                }
                _ => State::Code,
            },
            State::String(quote) => match byte {
                b'\\' => State::Escape(quote),
                b'\n' => State::Code,
                _ if byte == quote => State::Code,
                _ => State::String(quote),
            },
            State::Escape(quote) => State::String(quote),
            State::LineComment if byte == b'\n' => State::Code,
            State::LineComment => State::LineComment,
            State::BlockComment if byte == b'*' && next == Some(b'/') => {
                i += 1;
                State::Code
            }
            State::BlockComment => State::BlockComment,
        };
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_depth_counts_brackets_outside_strings_only() {
        let deep = "[".repeat(MAX_NESTING_DEPTH + 1);
        assert!(matches!(
            check_json_depth(&deep),
            Err(SchemaError::TooDeep { .. })
        ));
        let quoted = format!("\"{}\"", "[".repeat(10_000));
        assert!(check_json_depth(&quoted).is_ok());
        let escaped = format!("\"\\\"{}\"", "{".repeat(10_000));
        assert!(check_json_depth(&escaped).is_ok());
        let ok = format!(
            "{}{}",
            "[".repeat(MAX_NESTING_DEPTH),
            "]".repeat(MAX_NESTING_DEPTH)
        );
        assert!(check_json_depth(&ok).is_ok());
    }

    #[test]
    fn proto_depth_skips_comments_and_strings() {
        let deep = "message A {".repeat(MAX_NESTING_DEPTH + 1);
        assert!(matches!(
            check_proto_depth(&deep),
            Err(SchemaError::TooDeep { .. })
        ));
        let commented = format!("// {}\n/* {} */", "{".repeat(500), "{".repeat(500));
        assert!(check_proto_depth(&commented).is_ok());
        let quoted = format!("option x = \"{}\";", "{".repeat(500));
        assert!(check_proto_depth(&quoted).is_ok());
    }
}
