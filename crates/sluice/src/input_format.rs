//! `sluice produce --format`: split each input line into a record's key,
//! value, partition and headers with an rpk-style template such as
//! `'%k %v\n'` or `'%H %h{%k=%v;}%v\n'`. This is rpk's delimiter subset:
//! a field reads up to the literal text after it (or to the end of the
//! line), so two fields need text between them. Sizes and encodings
//! (`%K`, `%v{hex}`) are not supported and are refused when parsed.

use bytes::Bytes;

/// Most headers one input line may declare with `%H`; a bound on the
/// memory a single malformed line can ask for.
pub const MAX_INPUT_HEADERS: usize = 1024;

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// Text that must appear as is.
    Literal(String),
    /// `%k`: the record key (in a header group: the header name).
    Key,
    /// `%v`: the record value (in a header group: the header value).
    Value,
    /// `%p`: the partition, a number.
    Partition,
    /// `%H`: how many times the header group repeats, a number.
    HeaderCount,
    /// `%h{...}`: one header, repeated `%H` times.
    Headers(Vec<Token>),
}

/// A parsed `--format` template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFormat {
    tokens: Vec<Token>,
}

/// What one line held.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ParsedLine {
    /// The key, if the template has `%k`.
    pub key: Option<Bytes>,
    /// The value, if the template has `%v`.
    pub value: Option<Bytes>,
    /// The partition, if the template has `%p`.
    pub partition: Option<i32>,
    /// Headers in input order.
    pub headers: Vec<(String, Bytes)>,
}

impl InputFormat {
    /// Parses a template. One trailing `\n` ends a record (input is read
    /// line by line); any other newline is refused.
    pub fn parse(spec: &str) -> Result<InputFormat, String> {
        let unescaped = unescape(spec);
        let body = unescaped.strip_suffix('\n').unwrap_or(&unescaped);
        if body.contains('\n') {
            return Err(
                "--format: a record is one line; only a trailing \\n is allowed".to_owned(),
            );
        }
        let mut chars = body.chars().peekable();
        let tokens = parse_tokens(&mut chars, false)?;
        check_delimited(&tokens)?;
        let groups = tokens
            .iter()
            .filter(|t| matches!(t, Token::Headers(_)))
            .count();
        let counts = tokens.iter().filter(|t| **t == Token::HeaderCount).count();
        if groups > 1 || counts != groups {
            return Err("--format: %h{...} needs one %H (the header count) before it".to_owned());
        }
        Ok(InputFormat { tokens })
    }

    /// Splits one input line (without its newline).
    pub fn read(&self, line: &str) -> Result<ParsedLine, String> {
        let mut out = ParsedLine::default();
        let mut rest = line;
        let mut header_count = 0usize;
        let mut queue: std::collections::VecDeque<(Token, bool)> =
            self.tokens.iter().cloned().map(|t| (t, false)).collect();
        while let Some((token, in_header)) = queue.pop_front() {
            if let Token::Literal(text) = &token {
                rest = rest
                    .strip_prefix(text.as_str())
                    .ok_or_else(|| format!("expected '{}' at '{}'", text.escape_default(), rest))?;
                continue;
            }
            if let Token::Headers(inner) = &token {
                for _ in 0..header_count {
                    for t in inner.iter().rev() {
                        queue.push_front((t.clone(), true));
                    }
                }
                continue;
            }
            // A field: up to the next literal, or the rest of the line.
            let field = match queue.front() {
                Some((Token::Literal(delim), _)) => {
                    let end = rest.find(delim.as_str()).ok_or_else(|| {
                        format!("expected '{}' in '{}'", delim.escape_default(), rest)
                    })?;
                    let (field, tail) = rest.split_at(end);
                    rest = tail;
                    field
                }
                _ => std::mem::take(&mut rest),
            };
            match (token, in_header) {
                (Token::Key, true) => out.headers.push((field.to_owned(), Bytes::new())),
                (Token::Value, true) => match out.headers.last_mut() {
                    Some(h) => h.1 = Bytes::from(field.to_owned()),
                    None => return Err("%v before %k in a header group".to_owned()),
                },
                (Token::Key, false) => out.key = Some(Bytes::from(field.to_owned())),
                (Token::Value, false) => out.value = Some(Bytes::from(field.to_owned())),
                (Token::Partition, _) => {
                    out.partition = Some(
                        field
                            .parse::<i32>()
                            .ok()
                            .filter(|p| *p >= 0)
                            .ok_or_else(|| format!("'{field}' is not a partition"))?,
                    );
                }
                (Token::HeaderCount, _) => {
                    header_count = field
                        .parse::<usize>()
                        .ok()
                        .filter(|n| *n <= MAX_INPUT_HEADERS)
                        .ok_or_else(|| {
                            format!("'{field}' is not a header count (0 to {MAX_INPUT_HEADERS})")
                        })?;
                }
                (Token::Literal(_) | Token::Headers(_), _) => {}
            }
        }
        if !rest.is_empty() {
            return Err(format!("unexpected trailing text '{rest}'"));
        }
        Ok(out)
    }
}

/// Turns `\t`, `\n`, `\r`, `\\` and `\xNN` into the characters they name.
fn unescape(spec: &str) -> String {
    let mut out = String::new();
    let mut chars = spec.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                match u8::from_str_radix(&hex, 16) {
                    Ok(b) => out.push(char::from(b)),
                    Err(_) => {
                        out.push_str("\\x");
                        out.push_str(&hex);
                    }
                }
            }
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn parse_tokens(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    in_group: bool,
) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut literal = String::new();
    let push = |tokens: &mut Vec<Token>, literal: &mut String, t: Token| {
        if !literal.is_empty() {
            tokens.push(Token::Literal(std::mem::take(literal)));
        }
        tokens.push(t);
    };
    while let Some(c) = chars.next() {
        if in_group && c == '}' {
            if !literal.is_empty() {
                tokens.push(Token::Literal(literal));
            }
            return Ok(tokens);
        }
        if c != '%' {
            literal.push(c);
            continue;
        }
        match chars.next() {
            Some('k') => push(&mut tokens, &mut literal, Token::Key),
            Some('v') => push(&mut tokens, &mut literal, Token::Value),
            Some('p') if !in_group => push(&mut tokens, &mut literal, Token::Partition),
            Some('H') if !in_group => push(&mut tokens, &mut literal, Token::HeaderCount),
            Some('h') if !in_group => {
                if chars.next() != Some('{') {
                    return Err(
                        "--format: %h needs a header spec in braces, e.g. %h{%k=%v;}".to_owned(),
                    );
                }
                let inner = parse_tokens(chars, true)?;
                if !inner.contains(&Token::Key) {
                    return Err("--format: a header spec needs %k".to_owned());
                }
                if !matches!(inner.last(), Some(Token::Literal(_))) {
                    return Err(
                        "--format: a header spec must end with a delimiter, e.g. %h{%k=%v;}"
                            .to_owned(),
                    );
                }
                push(&mut tokens, &mut literal, Token::Headers(inner));
            }
            Some('%') => literal.push('%'),
            Some('{') => literal.push('{'),
            Some('}') => literal.push('}'),
            Some(other) => {
                return Err(format!(
                    "--format: %{other} is not supported here (use %k, %v, %p, %H and %h{{...}})"
                ));
            }
            None => return Err("--format: a lone % at the end".to_owned()),
        }
    }
    if in_group {
        return Err("--format: %h{ is not closed".to_owned());
    }
    if !literal.is_empty() {
        tokens.push(Token::Literal(literal));
    }
    Ok(tokens)
}

/// Refuses two fields in a row: nothing would say where the first ends.
fn check_delimited(tokens: &[Token]) -> Result<(), String> {
    let field = |t: &Token| {
        matches!(
            t,
            Token::Key | Token::Value | Token::Partition | Token::HeaderCount
        )
    };
    for pair in tokens.windows(2) {
        if field(&pair[0]) && (field(&pair[1]) || matches!(pair[1], Token::Headers(_))) {
            return Err("--format: put a delimiter between two fields, e.g. '%k %v'".to_owned());
        }
        if let Token::Headers(inner) = &pair[0] {
            check_delimited(inner)?;
        }
    }
    if let Some(Token::Headers(inner)) = tokens.last() {
        check_delimited(inner)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Option<Bytes> {
        Some(Bytes::from(s.to_owned()))
    }

    #[test]
    fn key_and_value_split_at_the_delimiter() {
        let f = InputFormat::parse("%k %v\\n").expect("parses");
        let line = f.read("user-1 hello world").expect("parses");
        assert_eq!((line.key, line.value), (b("user-1"), b("hello world")));
        assert!(f.read("no-delimiter").is_err());
    }

    #[test]
    fn headers_repeat_by_the_count() {
        let f = InputFormat::parse("%H %h{%k=%v;}%k\\t%v\\n").expect("parses");
        let line = f.read("2 a=1;b=2;key\tvalue").expect("parses");
        assert_eq!(
            line.headers,
            vec![
                ("a".to_owned(), Bytes::from("1")),
                ("b".to_owned(), Bytes::from("2"))
            ]
        );
        assert_eq!((line.key, line.value), (b("key"), b("value")));
        let none = f.read("0 k\tv").expect("parses");
        assert!(none.headers.is_empty());
        assert!(f.read("99999 k\tv").is_err(), "count over the bound");
        assert!(f.read("2 a=1;k\tv").is_err(), "fewer headers than counted");
    }

    #[test]
    fn partitions_and_bad_templates() {
        let f = InputFormat::parse("%p:%v").expect("parses");
        let line = f.read("2:x").expect("parses");
        assert_eq!((line.partition, line.value), (Some(2), b("x")));
        assert!(f.read("-1:x").is_err());
        for bad in [
            "%k%v",
            "%V",
            "%h{%k=%v;}",
            "%H %h{%k=%v}",
            "50%",
            "%H %h{%k",
        ] {
            assert!(InputFormat::parse(bad).is_err(), "{bad}");
        }
    }
}
