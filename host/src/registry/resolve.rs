//! A registry answer read into a [`Schema`], with its references resolved:
//! fetched by subject and version, depth first, so that each comes after
//! the ones it references itself.

use super::FetchError;
use serde::Deserialize;

/// The kind of a schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Apache Avro (the registry's default).
    Avro,
    /// Protocol Buffers (`.proto` text).
    Protobuf,
    /// JSON Schema.
    Json,
}

/// A schema another one references, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// The name the referencing schema uses for it.
    pub name: String,
    /// The subject it is registered under.
    pub subject: String,
    /// Its version there.
    pub version: i32,
    /// Its kind.
    pub format: Format,
    /// Its text.
    pub text: String,
}

/// A registered schema with everything it references.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    /// Its id, if known.
    pub id: Option<u32>,
    /// Its GUID, 32 lowercase hex digits, if the registry gave one.
    pub guid: Option<String>,
    /// The subject it is registered under (the first, if several).
    pub subject: Option<String>,
    /// Its kind.
    pub format: Format,
    /// Its text.
    pub text: String,
    /// Every schema it references, directly or not, each once, each after
    /// those it references.
    pub references: Vec<Reference>,
}

/// A schema as the registry's REST API returns it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    schema: String,
    #[serde(default)]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<AnswerReference>,
    #[serde(default)]
    id: Option<u32>,
    #[serde(default)]
    guid: Option<String>,
    #[serde(default)]
    version: Option<i32>,
}

/// The newest version registered under a subject.
#[derive(Debug, Clone, PartialEq)]
pub struct Latest {
    /// Its version number.
    pub version: i32,
    /// Its schema id.
    pub id: Option<u32>,
    /// Its kind.
    pub format: Format,
}

/// The newest version under `subject`, or `None` if the registry has no
/// such subject.
pub fn latest(subject: &str, get: &mut Get<'_>) -> Result<Option<Latest>, FetchError> {
    match answer(&subject_path(subject, "versions/latest"), get) {
        Ok(a) => Ok(Some(Latest {
            version: a.version.unwrap_or_default(),
            id: a.id,
            format: format(a.schema_type.as_deref())?,
        })),
        Err(FetchError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
struct AnswerReference {
    name: String,
    subject: String,
    version: i32,
}

/// An error body of the registry: `{"error_code": 40403, "message": "…"}`.
#[derive(Deserialize)]
struct ErrorBody {
    message: String,
}

/// Sends one GET to the registry, by path: the HTTP status and body, or
/// why no registry answered.
pub type Get<'a> = dyn FnMut(&str) -> Result<(u16, Vec<u8>), String> + 'a;

/// Most references one schema may have, all levels together: a bound on
/// the work a hostile or broken registry can cause.
const MAX_REFERENCES: usize = 256;

/// Fetches the schema at `path` and everything it references, sending
/// each request through `get` (which answers the HTTP status and body).
pub fn fetch(
    path: &str,
    known_subject: Option<&str>,
    get: &mut Get<'_>,
) -> Result<Schema, FetchError> {
    let top = answer(path, get)?;
    let format = format(top.schema_type.as_deref())?;
    let mut references = Vec::new();
    let mut visiting = Vec::new();
    for r in &top.references {
        resolve(r, get, &mut references, &mut visiting)?;
    }
    let id = top.id.or_else(|| id_in(path));
    let subject = match (known_subject, id) {
        (Some(subject), _) => Some(subject.to_owned()),
        (None, Some(id)) => subject_of(id, get)?,
        (None, None) => None,
    };
    Ok(Schema {
        id,
        subject,
        guid: top.guid.map(|g| g.replace('-', "").to_ascii_lowercase()),
        format,
        text: top.schema,
        references,
    })
}

/// One `(subject, version)` a schema is registered as.
#[derive(Deserialize)]
struct SubjectVersion {
    subject: String,
}

/// The first subject schema `id` is registered under, if the registry
/// knows one.
fn subject_of(id: u32, get: &mut Get<'_>) -> Result<Option<String>, FetchError> {
    let path = format!("schemas/ids/{id}/versions");
    let (status, body) = get(&path).map_err(FetchError::Unavailable)?;
    match status {
        200 => Ok(serde_json::from_slice::<Vec<SubjectVersion>>(&body)
            .ok()
            .and_then(|v| v.into_iter().next())
            .map(|v| v.subject)),
        // Not every registry serves this; the subject is only a help.
        404 => Ok(None),
        _ => Err(FetchError::Unavailable(format!(
            "GET /{path} answered HTTP {status}"
        ))),
    }
}

/// The id in a `schemas/ids/{id}` path: the registry's answer to it does
/// not repeat the id.
fn id_in(path: &str) -> Option<u32> {
    path.strip_prefix("schemas/ids/")?.parse().ok()
}

/// Adds `r`, after whatever it references, to `out` unless it is there.
fn resolve(
    r: &AnswerReference,
    get: &mut Get<'_>,
    out: &mut Vec<Reference>,
    visiting: &mut Vec<(String, i32)>,
) -> Result<(), FetchError> {
    let here = (r.subject.clone(), r.version);
    if out
        .iter()
        .any(|d| (d.subject.as_str(), d.version) == (here.0.as_str(), here.1))
    {
        return Ok(());
    }
    if visiting.contains(&here) {
        return Err(FetchError::NotFound(format!(
            "schema reference `{}` (subject `{}` version {}) refers back to itself",
            r.name, r.subject, r.version
        )));
    }
    if out.len() + visiting.len() >= MAX_REFERENCES {
        return Err(FetchError::NotFound(format!(
            "the schema has more than {MAX_REFERENCES} references"
        )));
    }
    let path = format!("subjects/{}/versions/{}", encode(&r.subject), r.version);
    let a = answer(&path, get)?;
    visiting.push(here);
    for inner in &a.references {
        resolve(inner, get, out, visiting)?;
    }
    visiting.pop();
    out.push(Reference {
        name: r.name.clone(),
        subject: r.subject.clone(),
        version: r.version,
        format: format(a.schema_type.as_deref())?,
        text: a.schema,
    });
    Ok(())
}

/// One request, read as a schema.
fn answer(path: &str, get: &mut Get<'_>) -> Result<Answer, FetchError> {
    let (status, body) = get(path).map_err(FetchError::Unavailable)?;
    let message = || {
        serde_json::from_slice::<ErrorBody>(&body)
            .map(|b| b.message)
            .unwrap_or_else(|_| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned())
    };
    match status {
        200 => serde_json::from_slice(&body).map_err(|e| {
            FetchError::Unavailable(format!(
                "the registry's answer to GET /{path} is not a schema: {e}"
            ))
        }),
        404 => Err(FetchError::NotFound(format!("GET /{path}: {}", message()))),
        _ => Err(FetchError::Unavailable(format!(
            "GET /{path} answered HTTP {status}: {}",
            message()
        ))),
    }
}

/// The format a `schemaType` names (absent: Avro).
fn format(schema_type: Option<&str>) -> Result<Format, FetchError> {
    match schema_type {
        None | Some("AVRO") => Ok(Format::Avro),
        Some("PROTOBUF") => Ok(Format::Protobuf),
        Some("JSON") => Ok(Format::Json),
        Some(other) => Err(FetchError::NotFound(format!(
            "schema type `{other}` is none of AVRO, PROTOBUF and JSON"
        ))),
    }
}

/// Sends one POST to the registry, by path and JSON body: the HTTP status
/// and body, or why no registry answered.
pub type Post<'a> = dyn FnMut(&str, Vec<u8>) -> Result<(u16, Vec<u8>), String> + 'a;

/// Registers `text` under `subject` through `post`; its id.
pub fn register(
    subject: &str,
    format: Format,
    text: &str,
    post: &mut Post<'_>,
) -> Result<u32, FetchError> {
    #[derive(Deserialize)]
    struct Registered {
        id: u32,
    }
    let mut body = serde_json::json!({ "schema": text });
    match format {
        Format::Avro => {}
        Format::Protobuf => body["schemaType"] = "PROTOBUF".into(),
        Format::Json => body["schemaType"] = "JSON".into(),
    }
    let path = subject_path(subject, "versions");
    let (status, answer) =
        post(&path, body.to_string().into_bytes()).map_err(FetchError::Unavailable)?;
    let said = || String::from_utf8_lossy(&answer[..answer.len().min(300)]).into_owned();
    match status {
        200 => serde_json::from_slice::<Registered>(&answer)
            .map(|r| r.id)
            .map_err(|e| {
                FetchError::Unavailable(format!(
                    "the registry's answer to POST /{path} has no id: {e}"
                ))
            }),
        // 409: incompatible with the subject's versions; 422: not a valid
        // schema. Sending it again cannot help.
        409 | 422 => Err(FetchError::NotFound(format!(
            "the registry refused the schema under `{subject}` (HTTP {status}): {}",
            said()
        ))),
        _ => Err(FetchError::Unavailable(format!(
            "POST /{path} answered HTTP {status}: {}",
            said()
        ))),
    }
}

/// The path of `subject`'s `rest` (`versions`, `versions/latest`).
pub fn subject_path(subject: &str, rest: &str) -> String {
    format!("subjects/{}/{rest}", encode(subject))
}

/// Percent-encodes a subject for a URL path.
fn encode(subject: &str) -> String {
    subject
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn registry(
        answers: &[(&str, u16, &str)],
    ) -> impl FnMut(&str) -> Result<(u16, Vec<u8>), String> {
        let map: HashMap<String, (u16, Vec<u8>)> = answers
            .iter()
            .map(|(p, s, b)| (p.to_string(), (*s, b.as_bytes().to_vec())))
            .collect();
        move |path| {
            map.get(path)
                .cloned()
                .ok_or_else(|| format!("unexpected GET {path}"))
        }
    }

    #[test]
    fn references_come_depth_first_and_once() {
        let mut get = registry(&[
            (
                "schemas/ids/3",
                200,
                r#"{"schema":"order","schemaType":"PROTOBUF","references":[
                    {"name":"a.proto","subject":"a","version":1},
                    {"name":"b.proto","subject":"b/x","version":2}]}"#,
            ),
            (
                "subjects/a/versions/1",
                200,
                r#"{"schema":"A","schemaType":"PROTOBUF","references":[{"name":"c.proto","subject":"c","version":1}]}"#,
            ),
            (
                "subjects/b%2Fx/versions/2",
                200,
                r#"{"schema":"B","schemaType":"PROTOBUF","references":[{"name":"c.proto","subject":"c","version":1}]}"#,
            ),
            (
                "subjects/c/versions/1",
                200,
                r#"{"schema":"C","schemaType":"PROTOBUF"}"#,
            ),
            (
                "schemas/ids/3/versions",
                200,
                r#"[{"subject":"orders-value","version":1}]"#,
            ),
        ]);
        let s = fetch("schemas/ids/3", None, &mut get).unwrap();
        assert_eq!((s.id, s.format), (Some(3), Format::Protobuf));
        assert_eq!(s.subject.as_deref(), Some("orders-value"));
        let order: Vec<&str> = s.references.iter().map(|r| r.text.as_str()).collect();
        assert_eq!(order, ["C", "A", "B"]);
    }

    #[test]
    fn not_found_and_outages_are_told_apart() {
        let mut get = registry(&[
            (
                "schemas/ids/9",
                404,
                r#"{"error_code":40403,"message":"Schema 9 not found"}"#,
            ),
            ("schemas/ids/8", 500, "boom"),
            (
                "schemas/ids/7",
                200,
                r#"{"schema":"x","references":[{"name":"n","subject":"s","version":1}]}"#,
            ),
            (
                "subjects/s/versions/1",
                200,
                r#"{"schema":"y","references":[{"name":"n","subject":"s","version":1}]}"#,
            ),
            ("schemas/ids/7/versions", 404, "{}"),
        ]);
        assert!(
            matches!(fetch("schemas/ids/9", None, &mut get), Err(FetchError::NotFound(m)) if m.contains("Schema 9 not found"))
        );
        assert!(
            matches!(fetch("schemas/ids/8", None, &mut get), Err(FetchError::Unavailable(m)) if m.contains("HTTP 500"))
        );
        assert!(
            matches!(fetch("schemas/ids/7", None, &mut get), Err(FetchError::NotFound(m)) if m.contains("refers back"))
        );
        assert!(matches!(
            fetch("schemas/ids/6", None, &mut get),
            Err(FetchError::Unavailable(_))
        ));
    }
}
