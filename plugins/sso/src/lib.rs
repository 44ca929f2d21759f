//! SSO connector: lists the SSO's accounts (who can log in, with which roles) and emits each
//! as an `account` record carrying the NIK, so the hub links it to the practitioner.
//!
//! The users API has no change feed, so every run lists all accounts; the hub stores only
//! what changed. The cursor holds the next page, so a run that stops resumes there.

use healthforce_sdk::http::HttpClient;
use healthforce_sdk::{
    Account, CanonicalRecord, Connector, Error, Page, SourceRef, SyncRequest, SyncSummary, pull_pages,
};
use serde::{Deserialize, Serialize};

const SYSTEM: &str = "sso";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    base_url: String,
    #[serde(default = "default_per_page")]
    per_page: u32,
    /// Name of the host-held OAuth2 credential.
    #[serde(default = "default_credential")]
    credential: String,
}

fn default_per_page() -> u32 {
    200
}

fn default_credential() -> String {
    SYSTEM.into()
}

#[derive(Serialize, Deserialize)]
struct Cursor {
    page: u32,
}

#[derive(Deserialize)]
struct Listing {
    page: u32,
    per_page: u32,
    total: u32,
    items: Vec<User>,
}

#[derive(Deserialize)]
struct User {
    subject: String,
    username: String,
    email: Option<String>,
    nik: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    active: bool,
}

struct Sso;

impl Connector for Sso {
    fn sync(request: SyncRequest) -> Result<SyncSummary, Error> {
        let config: Config = healthforce_sdk::config(&request.config)?;
        let client = HttpClient::new(&config.base_url)?.with_credential(&config.credential);
        let start = healthforce_sdk::cursor(&request)?.unwrap_or(Cursor { page: 1 });
        pull_pages(start, |cursor| {
            let listing: Listing =
                client.get_json(&format!("/api/users?page={}&per_page={}", cursor.page, config.per_page))?;
            let more = listing.page * listing.per_page < listing.total;
            Ok(Page {
                records: listing.items.into_iter().map(to_account).collect(),
                // After the last page the next run lists from the start again.
                checkpoint: Cursor {
                    page: if more { listing.page + 1 } else { 1 },
                },
                more,
            })
        })
    }
}

healthforce_sdk::export_connector!(Sso);

fn to_account(user: User) -> CanonicalRecord {
    CanonicalRecord::Account(Account {
        source: SourceRef {
            system: SYSTEM.into(),
            id: user.subject.clone(),
            updated_at: None,
        },
        subject: user.subject,
        username: user.username,
        email: user.email,
        nik: user.nik,
        roles: user.roles,
        active: user.active,
    })
}
