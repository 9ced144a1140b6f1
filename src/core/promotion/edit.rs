//! Reading and rewriting the version in an environment's file, byte-for-byte preserving.
//!
//! # Why a token splice on top of `yaml-edit`
//!
//! Both comment-preserving editors named in the issue were tried on golden files
//! (a Helm values file with comments, quoting and anchors; a kustomization with a block
//! and a flow `images:` entry):
//!
//! - `yamlpatch`: its current releases (1.31, 1.32) need rustc 1.97 (through
//!   `tree-sitter-iter`), newer than this project's toolchain; the last one that builds
//!   (0.13) re-quotes the replaced scalar (`tag: "1.2.3"` became `tag: 1.2.4`) and
//!   corrupted the flow mapping `{name: redis, newTag: "7.2"}` into `{ name: '7.4' }`.
//! - `yaml-edit` (0.3): a lossless rowan tree that keeps comments, blank lines and key
//!   order, but its setters re-quote the value (`'1.2.3'` became `1.2.4`, `"7.2"` became
//!   `'7.4'`).
//!
//! Neither keeps the bytes around the version token exactly, so rollgate uses `yaml-edit`
//! only to *find* the scalar (its lossless tree gives exact byte ranges, also inside flow
//! mappings) and splices the new version between the scalar's own quotes. Everything
//! outside the token stays byte-identical. `serde_yaml` (libyaml) first checks that the
//! file is well-formed YAML, because `yaml-edit` recovers from some errors silently.
//! Marker lines are found by a line scan (the marker is a comment, which both parsers
//! treat as trivia).
//!
//! A plain (unquoted) token whose new value would read as a number, boolean or null
//! (`1.10` would become the float `1.1`) is written double-quoted, the only case where
//! bytes next to the token change.

use std::str::FromStr;

use super::policy::VersionField;

/// Errors of reading or editing the version field. Every message names the file and the
/// field (and the line where known).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// The file is not well-formed YAML.
    #[error("{file}:{line}:{column}: malformed YAML: {message}")]
    Malformed {
        /// The file in the repository.
        file: String,
        /// 1-based line (0 when unknown).
        line: usize,
        /// 1-based column (0 when unknown).
        column: usize,
        /// What the parser said.
        message: String,
    },
    /// The field (or a key on the way to it) is not in the file.
    #[error("{file}: field {field}: {missing} not found")]
    Missing {
        /// The file in the repository.
        file: String,
        /// The field as written in the policy.
        field: String,
        /// The part of the path that is absent (`image`, `images[name=nginx].newTag`).
        missing: String,
    },
    /// The field exists but does not hold a single-line scalar.
    #[error("{file}:{line}: field {field}: {why}")]
    NotAScalar {
        /// The file in the repository.
        file: String,
        /// 1-based line of the value.
        line: usize,
        /// The field as written in the policy.
        field: String,
        /// What is there instead.
        why: String,
    },
}

/// Where the version token is: a byte range in the file and its current text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    start: usize,
    end: usize,
    /// The token is a plain (unquoted) scalar.
    plain: bool,
}

/// The result of [`set_field`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldEdit {
    /// The whole file after the edit.
    pub text: String,
    /// The version that was there before.
    pub previous: String,
    /// Whether anything changed (`false` when the version was already there).
    pub changed: bool,
}

/// The version currently in `field` of `text`; `file` names the file in errors.
///
/// # Errors
/// [`EditError`] when the YAML is malformed or the field is missing or not a scalar.
pub fn read_field(file: &str, text: &str, field: &VersionField) -> Result<String, EditError> {
    let tokens = locate(file, text, field)?;
    Ok(tokens
        .first()
        .map(|t| text[t.start..t.end].to_owned())
        .unwrap_or_default())
}

/// Write `version` into `field` of `text`, changing only the version token.
///
/// Every line carrying a marker is rewritten (Flux-setter semantics); the previous value
/// reported is the first one.
///
/// # Errors
/// [`EditError`] when the YAML is malformed or the field is missing or not a scalar.
pub fn set_field(
    file: &str,
    text: &str,
    field: &VersionField,
    version: &str,
) -> Result<FieldEdit, EditError> {
    let tokens = locate(file, text, field)?;
    let previous = tokens
        .first()
        .map(|t| text[t.start..t.end].to_owned())
        .unwrap_or_default();
    let changed = tokens.iter().any(|t| &text[t.start..t.end] != version);
    if !changed {
        return Ok(FieldEdit {
            text: text.to_owned(),
            previous,
            changed,
        });
    }
    let quoted = format!("\"{version}\"");
    let mut out = String::with_capacity(text.len() + tokens.len() * version.len());
    let mut at = 0;
    for t in &tokens {
        out.push_str(&text[at..t.start]);
        out.push_str(if t.plain && !reads_as_string(version) {
            &quoted
        } else {
            version
        });
        at = t.end;
    }
    out.push_str(&text[at..]);
    Ok(FieldEdit {
        text: out,
        previous,
        changed,
    })
}

/// Whether a plain scalar with this text is a string to a YAML reader.
fn reads_as_string(s: &str) -> bool {
    matches!(
        serde_yaml::from_str::<serde_yaml::Value>(s),
        Ok(serde_yaml::Value::String(_))
    )
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn check_well_formed(file: &str, text: &str) -> Result<(), EditError> {
    use serde::Deserialize;
    for document in serde_yaml::Deserializer::from_str(text) {
        if let Err(e) = serde_yaml::Value::deserialize(document) {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            let mut message = e.to_string();
            if let Some(at) = message.rfind(" at line ") {
                message.truncate(at);
            }
            return Err(EditError::Malformed {
                file: file.to_owned(),
                line,
                column,
                message,
            });
        }
    }
    Ok(())
}

fn locate(file: &str, text: &str, field: &VersionField) -> Result<Vec<Token>, EditError> {
    check_well_formed(file, text)?;
    match field {
        VersionField::Marker(id) => locate_markers(file, text, field, id),
        VersionField::HelmValue(_) | VersionField::KustomizeImage(_) => {
            locate_in_tree(file, text, field).map(|t| vec![t])
        }
    }
}

fn locate_in_tree(file: &str, text: &str, field: &VersionField) -> Result<Token, EditError> {
    let missing = |what: String| EditError::Missing {
        file: file.to_owned(),
        field: field.to_string(),
        missing: what,
    };
    let malformed = |message: String| EditError::Malformed {
        file: file.to_owned(),
        line: 0,
        column: 0,
        message,
    };
    let yaml = yaml_edit::YamlFile::from_str(text).map_err(|e| malformed(e.to_string()))?;
    let document = yaml
        .documents()
        .next()
        .ok_or_else(|| missing("the document".to_owned()))?;
    let root = document
        .as_mapping()
        .ok_or_else(|| missing("a mapping at the top of the file".to_owned()))?;
    let node = match field {
        VersionField::HelmValue(path) => {
            let mut mapping = root;
            let mut walked = String::new();
            let mut found = None;
            for (i, key) in path.iter().enumerate() {
                if !walked.is_empty() {
                    walked.push('.');
                }
                walked.push_str(key);
                let node = mapping
                    .get(key.as_str())
                    .ok_or_else(|| missing(walked.clone()))?;
                if i + 1 == path.len() {
                    found = Some(node);
                } else {
                    mapping = node.as_mapping().cloned().ok_or_else(|| {
                        let at = node.byte_range().start as usize;
                        EditError::NotAScalar {
                            file: file.to_owned(),
                            line: line_of(text, at),
                            field: field.to_string(),
                            why: format!("{walked} is not a mapping"),
                        }
                    })?;
                }
            }
            found.ok_or_else(|| missing(walked))?
        }
        VersionField::KustomizeImage(name) => {
            let images = root
                .get("images")
                .ok_or_else(|| missing("images".to_owned()))?;
            let images = images
                .as_sequence()
                .cloned()
                .ok_or_else(|| missing("images (a list)".to_owned()))?;
            let entry = images
                .values()
                .filter_map(|n| n.as_mapping().cloned())
                .find(|m| {
                    m.get("name")
                        .and_then(|n| n.as_scalar().map(yaml_edit::Scalar::as_string))
                        .is_some_and(|n| n == *name)
                })
                .ok_or_else(|| missing(format!("images[name={name}]")))?;
            entry
                .get("newTag")
                .ok_or_else(|| missing(format!("images[name={name}].newTag")))?
        }
        VersionField::Marker(_) => return Err(missing("marker".to_owned())),
    };
    let range = node.byte_range();
    let (start, end) = (range.start as usize, range.end as usize);
    let not_scalar = |why: &str| EditError::NotAScalar {
        file: file.to_owned(),
        line: line_of(text, start),
        field: field.to_string(),
        why: why.to_owned(),
    };
    if node.as_scalar().is_none() {
        return Err(not_scalar("the value is not a scalar"));
    }
    let raw = text
        .get(start..end)
        .ok_or_else(|| not_scalar("the value has no position in the file"))?;
    token_in(raw, start).ok_or_else(|| not_scalar("the value is not a single-line scalar"))
}

/// The token inside a scalar's raw text at `offset`: between its quotes if quoted.
fn token_in(raw: &str, offset: usize) -> Option<Token> {
    let raw_trimmed = raw.trim_end();
    if raw_trimmed.is_empty() || raw_trimmed.contains('\n') {
        return None;
    }
    let lead = raw.len() - raw.trim_start().len();
    let raw_trimmed = raw_trimmed.trim_start();
    let bytes = raw_trimmed.as_bytes();
    let quoted = bytes.len() >= 2
        && (bytes[0] == b'"' || bytes[0] == b'\'')
        && bytes[bytes.len() - 1] == bytes[0];
    if quoted {
        let inner = &raw_trimmed[1..raw_trimmed.len() - 1];
        if inner.contains('\\') || inner.contains('\'') || inner.contains('"') {
            return None;
        }
        Some(Token {
            start: offset + lead + 1,
            end: offset + lead + raw_trimmed.len() - 1,
            plain: false,
        })
    } else if matches!(bytes[0], b'|' | b'>' | b'&' | b'*' | b'!' | b'[' | b'{') {
        None
    } else {
        Some(Token {
            start: offset + lead,
            end: offset + lead + raw_trimmed.len(),
            plain: true,
        })
    }
}

/// Keys a marker comment may use: rollgate's own and Flux's setter key.
const MARKER_KEYS: [&str; 2] = ["$rollgate", "$imagepolicy"];

fn locate_markers(
    file: &str,
    text: &str,
    field: &VersionField,
    id: &str,
) -> Result<Vec<Token>, EditError> {
    let mut tokens = Vec::new();
    let mut line_start = 0;
    for (no, line) in text.split_inclusive('\n').enumerate() {
        let offset = line_start;
        line_start += line.len();
        let Some(hash) = comment_start(line) else {
            continue;
        };
        let comment = line[hash + 1..].trim();
        let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(comment)
        else {
            continue;
        };
        let Some(value) = MARKER_KEYS
            .iter()
            .find_map(|k| map.get(*k).and_then(serde_json::Value::as_str))
        else {
            continue;
        };
        let tag_only = if value == id {
            false
        } else if value.strip_suffix(":tag") == Some(id) {
            true
        } else {
            continue;
        };
        let not_scalar = |why: &str| EditError::NotAScalar {
            file: file.to_owned(),
            line: no + 1,
            field: field.to_string(),
            why: why.to_owned(),
        };
        let before = &line[..hash];
        let value_at =
            value_start(before).ok_or_else(|| not_scalar("no value before the marker"))?;
        let token = token_in(&before[value_at..], offset + value_at)
            .ok_or_else(|| not_scalar("the marked value is not a single-line scalar"))?;
        let token = if tag_only {
            let inner = &text[token.start..token.end];
            let name_end = inner.rfind('/').map_or(0, |i| i + 1);
            let colon = inner[name_end..]
                .find(':')
                .map(|i| name_end + i)
                .ok_or_else(|| not_scalar("the marked image reference has no tag"))?;
            let tag_end = inner[colon..].find('@').map_or(inner.len(), |i| colon + i);
            Token {
                start: token.start + colon + 1,
                end: token.start + tag_end,
                plain: false,
            }
        } else {
            token
        };
        tokens.push(token);
    }
    if tokens.is_empty() {
        return Err(EditError::Missing {
            file: file.to_owned(),
            field: field.to_string(),
            missing: format!("a line with the marker comment # {{\"$rollgate\": \"{id}\"}}"),
        });
    }
    Ok(tokens)
}

/// Byte index of the `#` that starts a comment on this line, outside quotes.
fn comment_start(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    let mut quote: Option<u8> = None;
    for (i, &c) in bytes.iter().enumerate() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'"' || c == b'\'' => quote = Some(c),
            None if c == b'#' && (i == 0 || bytes[i - 1] == b' ' || bytes[i - 1] == b'\t') => {
                return Some(i);
            }
            None => {}
        }
    }
    None
}

/// Where the value starts on a line (before its comment): after `key: ` or `- `.
fn value_start(before: &str) -> Option<usize> {
    let bytes = before.as_bytes();
    let mut i = bytes.iter().position(|c| *c != b' ')?;
    while bytes.get(i) == Some(&b'-') && bytes.get(i + 1) == Some(&b' ') {
        i += 2;
        while bytes.get(i) == Some(&b' ') {
            i += 1;
        }
    }
    let rest = &before[i..];
    let mut quote: Option<u8> = None;
    let mut at = None;
    for (j, &c) in rest.as_bytes().iter().enumerate() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'"' || c == b'\'' => quote = Some(c),
            None if c == b':' && matches!(rest.as_bytes().get(j + 1), Some(b' ' | b'\t')) => {
                at = Some(j + 2);
                break;
            }
            None => {}
        }
    }
    let start = i + at.unwrap_or(0);
    let skip = before[start..].len() - before[start..].trim_start().len();
    let start = start + skip;
    (start < before.trim_end().len()).then_some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &str) -> VersionField {
        s.parse().expect("field")
    }

    #[test]
    fn helm_plain_and_quoted() {
        let text = "image:\n  repository: x # c\n  tag: \"1.2.3\"   # pinned\nother: 1\n";
        assert_eq!(
            read_field("v.yaml", text, &f("image.tag")),
            Ok("1.2.3".into())
        );
        let e = set_field("v.yaml", text, &f("image.tag"), "1.2.4").expect("edit");
        assert_eq!(e.text, text.replace("1.2.3", "1.2.4"));
        assert_eq!(e.previous, "1.2.3");
        assert!(e.changed);
        let same = set_field("v.yaml", &e.text, &f("image.tag"), "1.2.4").expect("edit");
        assert!(!same.changed);
        assert_eq!(same.text, e.text);
    }

    #[test]
    fn plain_number_like_versions_get_quoted() {
        let text = "image:\n  tag: v1\n";
        let e = set_field("v.yaml", text, &f("image.tag"), "1.10").expect("edit");
        assert_eq!(e.text, "image:\n  tag: \"1.10\"\n");
        let e = set_field("v.yaml", text, &f("image.tag"), "1.2.3").expect("edit");
        assert_eq!(e.text, "image:\n  tag: 1.2.3\n");
    }

    #[test]
    fn kustomize_block_and_flow_entries() {
        let text =
            "images:\n  - name: app\n    newTag: '1.0'  # x\n  - {name: redis, newTag: \"7.2\"}\n";
        let e = set_field("k.yaml", text, &f("images:redis"), "7.4").expect("edit");
        assert_eq!(e.text, text.replace("\"7.2\"", "\"7.4\""));
        let e = set_field("k.yaml", text, &f("images:app"), "1.1").expect("edit");
        assert_eq!(e.text, text.replace("'1.0'", "'1.1'"));
        let err = set_field("k.yaml", text, &f("images:nginx"), "1").expect_err("missing");
        assert!(err.to_string().contains("images[name=nginx]"), "{err}");
    }

    #[test]
    fn markers_whole_and_tag() {
        let text = "spec:\n  image: ghcr.io/a/app:1.0.0 # {\"$rollgate\": \"app:tag\"}\n  v: \"1.0.0\" # {\"$imagepolicy\": \"app\"}\n  - 1.0.0 # {\"$rollgate\": \"other\"}\n";
        let e = set_field("m.yaml", text, &f("marker:app"), "2.0.0");
        // the fixture's last line is not valid YAML on purpose: a sequence under a mapping
        assert!(matches!(e, Err(EditError::Malformed { .. })), "{e:?}");
        let text = "spec:\n  image: ghcr.io/a/app:1.0.0@sha256:ab # {\"$rollgate\": \"app:tag\"}\n  v: \"1.0.0\" # {\"$imagepolicy\": \"app\"}\nlist:\n  - 1.0.0 # {\"$rollgate\": \"other\"}\n";
        let e = set_field("m.yaml", text, &f("marker:app"), "2.0.0").expect("edit");
        assert_eq!(
            e.text,
            text.replacen("app:1.0.0@", "app:2.0.0@", 1)
                .replacen("\"1.0.0\"", "\"2.0.0\"", 1)
        );
        let e = set_field("m.yaml", text, &f("marker:other"), "3").expect("edit");
        assert_eq!(e.text, text.replace("- 1.0.0", "- \"3\""));
    }

    #[test]
    fn errors_name_file_and_field() {
        let err =
            read_field("a/v.yaml", "image: {repo: x}\n", &f("image.tag")).expect_err("missing");
        assert_eq!(
            err.to_string(),
            "a/v.yaml: field image.tag: image.tag not found"
        );
        let err = read_field("a/v.yaml", "image:\n  tag: [1]\n", &f("image.tag")).expect_err("seq");
        assert!(
            err.to_string().starts_with("a/v.yaml:2: field image.tag"),
            "{err}"
        );
        let err = read_field("a/v.yaml", "image: [\n", &f("image.tag")).expect_err("bad");
        assert!(err.to_string().starts_with("a/v.yaml:"), "{err}");
        assert!(matches!(err, EditError::Malformed { .. }));
        let err = read_field("a/v.yaml", "x: 1\n", &f("marker:app")).expect_err("none");
        assert!(err.to_string().contains("marker"), "{err}");
    }
}
