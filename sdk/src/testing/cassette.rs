//! Cassettes recorded by `hub plugin run --record`, replayed natively: the recorded answers
//! come from a [`FakeHost`], and [`replay_all`] checks that a connector still emits the
//! records and saves the cursor the recording did. `hub plugin test` replays the same file
//! in the hub's sandbox and compares every field of every record as well.

use super::{FakeHost, Request};
use crate::http::Response;
use crate::{CanonicalRecord, Connector};
use serde::Deserialize;
use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

/// A recorded run (the hub's format 1; its fields are in docs/plugins.md).
#[derive(Clone, Debug, Deserialize)]
pub struct Cassette {
    pub format: u32,
    /// `name@version` of the plugin recorded.
    pub plugin: String,
    /// The connector config of the run.
    pub config: serde_json::Value,
    /// The cursor the run started from.
    pub cursor: Option<String>,
    exchanges: Vec<Exchange>,
    outcome: Outcome,
}

#[derive(Clone, Debug, Deserialize)]
struct Exchange {
    request: Message,
    response: Message,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct Message {
    method: Option<String>,
    url: Option<String>,
    status: Option<u16>,
    headers: Vec<(String, String)>,
    #[serde(default)]
    body: String,
    body_base64: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
struct Outcome {
    records: Vec<serde_json::Value>,
    cursor: Option<String>,
    result: String,
}

impl Message {
    fn body(&self) -> Vec<u8> {
        use base64::Engine as _;
        match &self.body_base64 {
            Some(encoded) => base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .unwrap_or_default(),
            None => self.body.clone().into_bytes(),
        }
    }

    /// Whether `request` is this recorded one: method, URL and body, and each header whose
    /// recorded value holds a secret or token placeholder.
    fn matches(&self, request: &Request) -> bool {
        self.method.as_deref() == Some(request.method.as_str())
            && self.url.as_deref() == Some(request.url.as_str())
            && self.body() == request.body
            && (self.headers.iter())
                .filter(|(_, value)| value.contains("{{secret:") || value.contains("{{token:"))
                .all(|(name, value)| request.header(name).as_deref() == Some(value.as_str()))
    }
}

impl Cassette {
    /// Reads the cassette at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, String> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        let cassette: Self = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a cassette of `hub plugin run --record`: {e}", path.display()))?;
        if cassette.format != 1 {
            return Err(format!(
                "{} is cassette format {}; this SDK reads format 1",
                path.display(),
                cassette.format
            ));
        }
        Ok(cassette)
    }

    /// `(system, id)` of each record the recording emitted, in order.
    pub fn sources(&self) -> Vec<(String, String)> {
        (self.outcome.records.iter())
            .map(|record| {
                let source = record.as_object().and_then(|r| r.values().next()).map(|r| &r["source"]);
                let field = |name: &str| {
                    let value = source.and_then(|s| s[name].as_str());
                    value.unwrap_or_default().to_string()
                };
                (field("system"), field("id"))
            })
            .collect()
    }

    /// The cursor the recording saved last.
    pub fn saved_cursor(&self) -> Option<&str> {
        self.outcome.cursor.as_deref()
    }

    /// Whether the recorded sync succeeded.
    pub fn succeeded(&self) -> bool {
        self.outcome.result == "ok"
    }

    /// A fake host that answers as the recording: each exchange once, in order; the
    /// secrets and credentials the recording used answer with the placeholders the file
    /// holds in their place; the run starts from the recorded cursor.
    pub fn host(&self) -> FakeHost {
        let mut host = FakeHost::new();
        for exchange in &self.exchanges {
            let request = &exchange.request;
            let texts = (request.headers.iter().map(|(_, v)| v.as_str()))
                .chain(request.url.as_deref())
                .chain([request.body.as_str()]);
            for text in texts {
                for (kind, name) in placeholders(text) {
                    let value = format!("{{{{{kind}:{name}}}}}");
                    host = match kind {
                        "secret" => host.secret(name, &value),
                        _ => host.credential(name, &value),
                    };
                }
            }
        }
        if let Some(cursor) = &self.cursor {
            host = host.cursor(cursor);
        }
        let played = Rc::new(RefCell::new(vec![false; self.exchanges.len()]));
        let exchanges = self.exchanges.clone();
        host.respond_with(move |request| {
            let mut played = played.borrow_mut();
            let index = (exchanges.iter().zip(played.iter()))
                .position(|(exchange, played)| !played && exchange.request.matches(request))?;
            played[index] = true;
            let recorded = &exchanges[index].response;
            Some(Response {
                status: recorded.status.unwrap_or(200),
                headers: (recorded.headers.iter())
                    .map(|(name, value)| (name.clone(), value.clone().into_bytes()))
                    .collect(),
                body: recorded.body(),
            })
        })
    }
}

/// `(kind, name)` of each `{{secret:NAME}}` / `{{token:NAME}}` in `text`.
fn placeholders(text: &str) -> Vec<(&'static str, &str)> {
    let mut found = Vec::new();
    for kind in ["secret", "token"] {
        let open = format!("{{{{{kind}:");
        let mut rest = text;
        while let Some(start) = rest.find(&open) {
            let after = &rest[start + open.len()..];
            let Some(end) = after.find("}}") else { break };
            found.push((kind, &after[..end]));
            rest = &after[end..];
        }
    }
    found
}

/// Replays every cassette (`*.json`) in `dir` with `C::sync` and panics, naming the file and
/// the difference, when a replay fails where the recording succeeded, emits records of other
/// sources, or saves another cursor. Returns how many it replayed (none when `dir` does not
/// exist: record one with `hub plugin run --record cassettes/NAME.json`).
pub fn replay_all<C: Connector>(dir: impl AsRef<Path>) -> usize {
    let Ok(entries) = std::fs::read_dir(dir.as_ref()) else {
        return 0;
    };
    let mut files: Vec<_> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    for file in &files {
        let cassette = Cassette::load(file).unwrap_or_else(|problem| panic!("{problem}"));
        let host = cassette.host();
        let result = host.run(|| C::sync(host.sync_request(cassette.config.clone())));
        let name = file.display();
        assert_eq!(
            result.is_ok(),
            cassette.succeeded(),
            "{name}: the sync now ends {result:?}; recorded: {}",
            cassette.outcome.result
        );
        let sources: Vec<(String, String)> = host.records().iter().map(source).collect();
        assert_eq!(
            sources,
            cassette.sources(),
            "{name}: the records emitted (system, id) differ from the recording"
        );
        assert_eq!(
            host.saved_cursor().as_deref(),
            cassette.saved_cursor(),
            "{name}: the cursor saved differs from the recording"
        );
    }
    files.len()
}

fn source(record: &CanonicalRecord) -> (String, String) {
    let source = match record {
        CanonicalRecord::Practitioner(p) => &p.source,
        CanonicalRecord::Observation(o) => &o.source,
        CanonicalRecord::Account(a) => &a.source,
    };
    (source.system.clone(), source.id.clone())
}

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn placeholders_are_found_wherever_they_are() {
        assert_eq!(
            placeholders("Bearer {{token:regnakes}} and {{secret:api_key}}{{secret:other}}"),
            vec![("secret", "api_key"), ("secret", "other"), ("token", "regnakes")]
        );
        assert!(placeholders("{{secret:unclosed").is_empty());
    }
}
