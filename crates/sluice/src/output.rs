//! `--format text|json|yaml` (and `--json`, its older short form) for every
//! command that prints data. Text is each command's own table; JSON and
//! YAML print the same document. YAML comes from a small emitter over JSON
//! values (no YAML crate in the workspace): block mappings and sequences,
//! strings always double-quoted, which YAML reads exactly as JSON does.

use clap::{Args, ValueEnum};
use serde_json::Value;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The command's table or summary.
    Text,
    /// JSON.
    Json,
    /// YAML.
    Yaml,
}

/// The output flags a data-printing command flattens in.
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Print JSON (the same as `--format json`).
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// Prints `value` as indented JSON or as YAML; text is the caller's.
pub fn print_data(format: Format, value: &Value) {
    match format {
        Format::Yaml => print!("{}", to_yaml(value)),
        _ => println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
        ),
    }
}

impl OutputArgs {
    /// The format asked for.
    pub fn format(&self) -> Format {
        if self.json { Format::Json } else { self.format }
    }

    /// Whether to print a JSON or YAML document rather than text.
    pub fn is_data(&self) -> bool {
        self.format() != Format::Text
    }

    /// Prints `value` as one line of JSON, or as YAML.
    pub fn print(&self, value: &Value) {
        match self.format() {
            Format::Yaml => print!("{}", to_yaml(value)),
            _ => println!("{value}"),
        }
    }

    /// Prints `value` as indented JSON, or as YAML.
    pub fn print_pretty(&self, value: &Value) {
        print_data(self.format(), value);
    }
}

/// `value` as a YAML document, ending in a newline.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    for line in yaml_lines(value) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Whether `value` fits after `key: ` or `- ` on one line.
fn is_inline(value: &Value) -> bool {
    match value {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => true,
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Object(_) => "{}".to_owned(),
        Value::Array(_) => "[]".to_owned(),
        // A JSON string is a valid YAML double-quoted scalar with the same
        // escapes, so "no", "1.0" and "a: b" stay strings.
        other => other.to_string(),
    }
}

fn key(k: &str) -> String {
    let plain = k
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if plain {
        k.to_owned()
    } else {
        Value::String(k.to_owned()).to_string()
    }
}

fn yaml_lines(value: &Value) -> Vec<String> {
    match value {
        Value::Object(m) if !m.is_empty() => {
            let mut lines = Vec::new();
            for (k, v) in m {
                if is_inline(v) {
                    lines.push(format!("{}: {}", key(k), scalar(v)));
                } else {
                    lines.push(format!("{}:", key(k)));
                    lines.extend(yaml_lines(v).into_iter().map(|l| format!("  {l}")));
                }
            }
            lines
        }
        Value::Array(a) if !a.is_empty() => {
            let mut lines = Vec::new();
            for v in a {
                if is_inline(v) {
                    lines.push(format!("- {}", scalar(v)));
                    continue;
                }
                for (i, l) in yaml_lines(v).into_iter().enumerate() {
                    lines.push(if i == 0 {
                        format!("- {l}")
                    } else {
                        format!("  {l}")
                    });
                }
            }
            lines
        }
        other => vec![scalar(other)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_documents_become_block_yaml() {
        let v = serde_json::json!({
            "cluster_id": "abc",
            "brokers": [{"node_id": 1, "rack": null}, {"node_id": 2, "rack": "r"}],
            "empty": [],
            "odd key": {"n": [1, [2, 3]]},
            "flag": true,
        });
        assert_eq!(
            to_yaml(&v),
            "brokers:\n  - node_id: 1\n    rack: null\n  - node_id: 2\n    rack: \"r\"\n\
             cluster_id: \"abc\"\nempty: []\nflag: true\n\"odd key\":\n  n:\n    - 1\n    - - 2\n      - 3\n"
        );
        assert_eq!(to_yaml(&serde_json::json!([])), "[]\n");
        assert_eq!(to_yaml(&serde_json::json!("no")), "\"no\"\n");
    }
}
