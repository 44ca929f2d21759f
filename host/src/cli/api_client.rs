//! The CLI's client of the hub's REST API: base URL and credential from flags or
//! `HUB_API_URL` / `HUB_API_KEY`; problem+json answers become errors carrying their detail.

use anyhow::Context;
use clap::Args;
use serde_json::Value;

#[derive(Args)]
pub struct ApiArgs {
    /// Base URL of the hub.
    #[arg(long, global = true, env = "HUB_API_URL", default_value = "http://127.0.0.1:8080")]
    pub api: String,
    /// API key or SSO token.
    #[arg(long, global = true, env = "HUB_API_KEY", hide_env_values = true)]
    pub key: Option<String>,
}

pub fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

enum Payload<'a> {
    Json(&'a Value),
    Bytes(Vec<u8>),
}

pub struct Client {
    http: reqwest::Client,
    api: ApiArgs,
}

impl Client {
    pub fn new(api: ApiArgs) -> anyhow::Result<Self> {
        if api.key.as_deref().is_none_or(|k| k.trim().is_empty()) {
            anyhow::bail!("no credentials: pass --key <API key or SSO token> or set HUB_API_KEY");
        }
        hub::manager::credentials::install_tls_provider();
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()?,
            api,
        })
    }

    /// Calls the API; a problem+json answer becomes an error carrying its `detail`.
    pub async fn call(&self, method: reqwest::Method, path: &str) -> anyhow::Result<Value> {
        self.request(method, path, None).await
    }

    /// POSTs the JSON `body`, as [`Client::call`].
    pub async fn post_json(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.request(reqwest::Method::POST, path, Some(Payload::Json(body)))
            .await
    }

    /// Sends `method` with the JSON `body`, as [`Client::call`].
    pub async fn send_json(&self, method: reqwest::Method, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.request(method, path, Some(Payload::Json(body))).await
    }

    /// POSTs `bytes` as `application/octet-stream` (a package), as [`Client::call`].
    pub async fn upload(&self, path: &str, bytes: Vec<u8>) -> anyhow::Result<Value> {
        self.request(reqwest::Method::POST, path, Some(Payload::Bytes(bytes)))
            .await
    }

    async fn request(&self, method: reqwest::Method, path: &str, body: Option<Payload<'_>>) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.api.api.trim_end_matches('/'));
        let mut request = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(self.api.key.as_deref().unwrap_or_default());
        match body {
            Some(Payload::Json(body)) => request = request.json(body),
            Some(Payload::Bytes(bytes)) => {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                    .timeout(std::time::Duration::from_secs(300))
                    .body(bytes)
            }
            None => {}
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the hub at {} (set --api or HUB_API_URL)", self.api.api))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            anyhow::bail!(
                "{method} {path}: {status}: {}",
                body["detail"].as_str().unwrap_or("no details")
            );
        }
        Ok(body)
    }
}
