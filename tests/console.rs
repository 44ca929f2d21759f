//! The console's sign-in and sessions over real HTTP, as a browser makes the requests: the SSO's
//! authorization code flow with PKCE against the SSO simulator, API-key sign-in, the
//! session cookie reaching the API, CSRF, roles, sign-out and idle expiry, on SQLite and
//! PostgreSQL. The pages themselves are driven in a real browser by tests/console_browser.rs.

use hub_e2e::{Backend, TestHub, backends, sso};
use hub_sim::sso::CONSOLE_CLIENT;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::collections::BTreeMap;

/// A browser without a script: follows nothing by itself, keeps cookies per origin.
struct Browser {
    http: reqwest::Client,
    cookies: BTreeMap<String, BTreeMap<String, String>>,
}

struct Page {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

impl Browser {
    fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
        }
    }

    async fn send(
        &mut self,
        method: Method,
        url: &str,
        form: Option<&[(&str, &str)]>,
        headers: &[(&str, &str)],
    ) -> Page {
        let origin = origin_of(url);
        let jar = self.cookies.entry(origin.clone()).or_default();
        let mut request = self.http.request(method, url);
        if !jar.is_empty() {
            let cookie: Vec<String> = jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            request = request.header(COOKIE, cookie.join("; "));
        }
        if let Some(form) = form {
            request = request.form(form);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("reachable");
        for set in response.headers().get_all(SET_COOKIE) {
            let set = set.to_str().unwrap();
            let (pair, attributes) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || attributes.contains("Max-Age=0") {
                jar.remove(name);
            } else {
                jar.insert(name.to_string(), value.to_string());
            }
        }
        Page {
            status: response.status(),
            location: response
                .headers()
                .get(LOCATION)
                .map(|l| l.to_str().unwrap().to_string()),
            body: response.text().await.unwrap(),
        }
    }

    async fn get(&mut self, url: &str) -> Page {
        self.send(Method::GET, url, None, &[]).await
    }

    fn cookie(&self, url: &str, name: &str) -> Option<String> {
        self.cookies.get(&origin_of(url))?.get(name).cloned()
    }
}

fn origin_of(url: &str) -> String {
    let parsed = reqwest::Url::parse(url).unwrap();
    format!("{}://{}", parsed.scheme(), parsed.host_str().unwrap())
        + &format!(":{}", parsed.port_or_known_default().unwrap())
}

/// The CSRF token a console page carries in its `<meta name="csrf-token">`.
fn csrf_of(page: &str) -> String {
    let at = page
        .find(r#"name="csrf-token" content=""#)
        .expect("a signed-in page carries its CSRF token");
    let rest = &page[at + r#"name="csrf-token" content=""#.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// A RegNakes connector over `people` synthetic people, and a browser signed in as a viewer.
async fn connector_and_viewer(
    hub: &TestHub,
    name: &str,
    people: usize,
) -> (hub_sim::RegnakesSim, hub_sim::Running, String, Browser) {
    let regnakes = hub_sim::RegnakesConfig {
        people,
        ..Default::default()
    };
    let (sim, sim_server) = hub_e2e::regnakes(regnakes.clone()).await;
    let connector = hub.regnakes_connector(name, &sim_server.base_url(), &regnakes).await;
    let viewer = hub.api_key(&format!("{name}-viewer"), "viewer", false).await;
    let mut browser = Browser::new();
    sign_in_with_key(&mut browser, hub, &viewer).await;
    (sim, sim_server, connector, browser)
}

/// Signs `browser` in with an API key through the sign-in form; the overview's page.
async fn sign_in_with_key(browser: &mut Browser, hub: &TestHub, key: &str) -> String {
    let page = browser
        .send(
            Method::POST,
            &hub.url("/login"),
            Some(&[("api_key", key)]),
            &[("sec-fetch-site", "same-origin")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let overview = browser.get(&hub.url("/")).await;
    assert_eq!(overview.status, StatusCode::OK, "{}", overview.body);
    overview.body
}

async fn audit_actions(hub: &TestHub) -> Vec<Value> {
    hub.all_pages("/api/v1/audit").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_sign_in_is_an_authorization_code_flow_with_pkce_and_its_code_works_once() {
    let (sso, sso_server) = sso().await;
    for backend in backends() {
        let hub = TestHub::start_with_console_sso(backend, &sso, |_| {}).await;
        let mut browser = Browser::new();
        // Not signed in: the console sends the browser to its sign-in page.
        let page = browser.get(&hub.url("/")).await;
        assert_eq!(page.location.as_deref(), Some("/login"), "{backend:?}");
        let page = browser.get(&hub.url("/login/sso")).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        let authorize = page.location.unwrap();
        assert!(
            authorize.starts_with(&format!("{}/authorize?", sso_server.base_url())),
            "{authorize}"
        );
        let query: BTreeMap<String, String> = reqwest::Url::parse(&authorize)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect();
        assert_eq!(query["code_challenge_method"], "S256");
        assert_eq!(query["client_id"], CONSOLE_CLIENT);
        assert_eq!(query["redirect_uri"], hub.url("/login/callback"));
        assert_eq!(query["code_challenge"].len(), 43, "base64url of a SHA-256");

        // The SSO's form: a wrong password stays there; the right one goes back with a code.
        let form_page = browser.get(&authorize).await;
        assert_eq!(form_page.status, StatusCode::OK);
        let fields: Vec<(&str, &str)> = query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut answers = Vec::new();
        for password in ["wrong", "admin-password"] {
            let mut form = fields.clone();
            form.extend([("username", "admin"), ("password", password)]);
            let sso_form = format!("{}/authorize", sso_server.base_url());
            answers.push(browser.send(Method::POST, &sso_form, Some(&form), &[]).await);
        }
        let back = answers.pop().unwrap();
        assert_eq!(
            answers[0].status,
            StatusCode::OK,
            "a wrong password gets the form again"
        );
        let callback = back.location.expect("sent back to the hub");
        assert!(callback.starts_with(&hub.url("/login/callback?code=")), "{callback}");

        // The callback from another browser (no state cookie) is refused.
        let mut stranger = Browser::new();
        let refused = stranger.get(&callback).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
        let signed = browser.get(&callback).await;
        assert_eq!(signed.status, StatusCode::OK, "{}", signed.body);
        let session = browser.cookie(&hub.url("/"), "hub_session").expect("a session cookie");
        assert!(session.len() >= 43);
        let overview = browser.get(&hub.url("/")).await;
        assert_eq!(overview.status, StatusCode::OK);
        assert!(overview.body.contains("sso:admin"), "the page says who is signed in");

        // The same code again, even from the browser that used it: refused.
        let again = browser.get(&callback).await;
        assert_eq!(again.status, StatusCode::UNAUTHORIZED, "{}", again.body);

        let audit = audit_actions(&hub).await;
        let login = audit
            .iter()
            .find(|e| e["action"] == "auth.login" && e["target"] == "console")
            .expect("the sign-in is audited");
        assert_eq!(login["actor"], "sso:admin");
        assert_eq!(login["details"]["method"], "sso");
        assert!(
            audit
                .iter()
                .any(|e| e["action"] == "auth.failed" && e["target"] == "console"),
            "the refused callbacks are audited"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_reaches_the_api_and_a_change_needs_its_csrf_token() {
    for backend in backends() {
        let hub = TestHub::start(backend).await;
        let operator = hub.api_key("console-operator", "operator", false).await;
        let mut browser = Browser::new();
        let overview = sign_in_with_key(&mut browser, &hub, &operator).await;
        let csrf = csrf_of(&overview);
        let api = hub.url("/api/v1/connectors");
        let read = browser.get(&api).await;
        assert_eq!(read.status, StatusCode::OK, "{backend:?}: {}", read.body);

        // A run of a connector that does not exist: the permission check passes with the
        // token (404 from the handler), and stops the request without it (403).
        let run = hub.url("/api/v1/connectors/00000000-0000-0000-0000-000000000000/run");
        let forged = browser.send(Method::POST, &run, None, &[]).await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
        assert!(forged.body.contains("CSRF"), "{}", forged.body);
        let wrong = browser
            .send(Method::POST, &run, None, &[("x-csrf-token", "0".repeat(64).as_str())])
            .await;
        assert_eq!(wrong.status, StatusCode::FORBIDDEN);
        let allowed = browser
            .send(Method::POST, &run, None, &[("x-csrf-token", csrf.as_str())])
            .await;
        assert_eq!(allowed.status, StatusCode::NOT_FOUND, "{}", allowed.body);

        let audit = audit_actions(&hub).await;
        assert!(
            audit.iter().any(|e| e["action"] == "access.denied"
                && e["actor"] == "api-key:console-operator"
                && e["details"]["reason"].as_str().unwrap_or_default().contains("CSRF")),
            "the forged request is audited"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_no_buttons_and_the_api_refuses_its_session_even_with_the_token() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let (_sim, _sim_server, connector, mut browser) = connector_and_viewer(&hub, "console-regnakes", 20).await;
    let overview = browser.get(&hub.url("/")).await.body;
    assert!(
        overview.contains("console-regnakes"),
        "the overview lists the connector"
    );
    let page = browser.get(&hub.url(&format!("/connectors/{connector}"))).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(!page.body.contains("data-api="), "no mutating button for a viewer");
    let csrf = csrf_of(&page.body);
    let disable = hub.url(&format!("/api/v1/connectors/{connector}/disable"));
    let forged = browser
        .send(Method::POST, &disable, None, &[("x-csrf-token", csrf.as_str())])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
    assert!(forged.body.contains("operate"), "{}", forged.body);
    assert_eq!(
        hub.get(&format!("/api/v1/connectors/{connector}")).await["enabled"],
        true
    );
    // Practitioner search is for pii:read holders only.
    let search = browser.get(&hub.url("/practitioners")).await;
    assert_eq!(search.status, StatusCode::FORBIDDEN);
    assert!(
        search.body.contains(r#"<html lang="id">"#) && search.body.contains("pii:read"),
        "the refusal is a page in the browser's language saying why: {}",
        search.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_revoking_the_key_or_idling_ends_the_session_for_the_api_too() {
    for backend in backends() {
        let hub = TestHub::start(backend).await;
        let key = hub.api_key("console-admin", "admin", false).await;
        let mut browser = Browser::new();
        let overview = sign_in_with_key(&mut browser, &hub, &key).await;
        let csrf = csrf_of(&overview);
        // Signing out needs the page's token.
        let forged = browser
            .send(Method::POST, &hub.url("/logout"), Some(&[("csrf", "nope")]), &[])
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        let session = browser.cookie(&hub.url("/"), "hub_session").unwrap();
        let out = browser
            .send(Method::POST, &hub.url("/logout"), Some(&[("csrf", csrf.as_str())]), &[])
            .await;
        assert_eq!(out.location.as_deref(), Some("/login"));
        assert_eq!(
            browser.cookie(&hub.url("/"), "hub_session"),
            None,
            "the cookie is cleared"
        );
        // The old cookie, replayed, is no session any more.
        let replay = reqwest::Client::new()
            .get(hub.url("/api/v1/connectors"))
            .header(COOKIE, format!("hub_session={session}"))
            .send()
            .await
            .unwrap();
        assert_eq!(replay.status(), StatusCode::UNAUTHORIZED, "{backend:?}");
        assert!(audit_actions(&hub).await.iter().any(|e| e["action"] == "auth.logout"));

        // Revoking the key a session signed in with ends the session.
        sign_in_with_key(&mut browser, &hub, &key).await;
        let keys = hub.all_pages("/api/v1/api-keys").await;
        let id = keys.iter().find(|k| k["name"] == "console-admin").unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let (status, _) = hub.call(Method::DELETE, &format!("/api/v1/api-keys/{id}"), None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let revoked = browser.get(&hub.url("/")).await;
        assert_eq!(
            revoked.location.as_deref(),
            Some("/login"),
            "{backend:?}: the key's session ended"
        );

        // A session idle longer than [auth] session_idle_minutes ends.
        let key = hub.api_key("console-admin-2", "admin", false).await;
        sign_in_with_key(&mut browser, &hub, &key).await;
        let sql = match backend {
            Backend::Sqlite => "UPDATE console_sessions SET last_seen_at = '2000-01-01T00:00:00.000Z'",
            Backend::Postgres => "UPDATE console_sessions SET last_seen_at = last_seen_at - interval '31 minutes'",
        };
        sqlx::query(sql).execute(&hub.raw_sql().await).await.unwrap();
        let idle = browser.get(&hub.url("/")).await;
        assert_eq!(idle.location.as_deref(), Some("/login"), "{backend:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_refuses_a_cross_site_form_and_a_wrong_key_audits_both_and_repeats_no_made_up_sso_error() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let key = hub.api_key("console-integrator", "integrator", false).await;
    let mut browser = Browser::new();
    let cross = browser
        .send(
            Method::POST,
            &hub.url("/login"),
            Some(&[("api_key", key.as_str())]),
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    assert_eq!(browser.cookie(&hub.url("/"), "hub_session"), None);
    // An error sent back "from the SSO" is named only when it is an OAuth error code.
    let denied = browser.get(&hub.url("/login/callback?error=access_denied")).await;
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
    assert!(denied.body.contains("(access_denied)"), "{}", denied.body);
    let injected = browser
        .get(&hub.url("/login/callback?error=Call%20%2B62%20800%20to%20unlock"))
        .await;
    assert!(!injected.body.contains("unlock"), "{}", injected.body);
    let wrong = browser
        .send(
            Method::POST,
            &hub.url("/login"),
            Some(&[("api_key", "hub_not-a-key")]),
            &[("sec-fetch-site", "same-origin")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("unknown or revoked"), "{}", wrong.body);
    assert!(!wrong.body.contains("hub_not-a-key"), "the key is never echoed");
    assert!(
        audit_actions(&hub)
            .await
            .iter()
            .any(|e| e["action"] == "auth.failed" && e["details"]["method"] == "api-key")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_pages_load_nothing_from_elsewhere_and_cannot_be_framed() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let mut browser = Browser::new();
    let response = reqwest::get(hub.url("/login")).await.unwrap();
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let body = response.text().await.unwrap();
    assert!(body.contains(r#"<html lang="id">"#), "Bahasa Indonesia by default");
    assert!(
        !body.contains("http://") && !body.contains("https://"),
        "no URL elsewhere: {body}"
    );
    // English on request, kept in a cookie; `next` cannot leave the hub.
    let switch = browser.get(&hub.url("/lang/en?next=//evil.example")).await;
    assert_eq!(switch.location.as_deref(), Some("/"));
    let english = browser.get(&hub.url("/login")).await;
    assert!(english.body.contains(r#"<html lang="en">"#));
    assert!(english.body.contains("Sign in with an API key"));
    for asset in ["/assets/console.css", "/assets/console.js"] {
        let response = reqwest::get(hub.url(asset)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        let text = response.text().await.unwrap();
        assert!(
            !text.contains("http://") && !text.contains("https://"),
            "{asset} loads nothing from elsewhere"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_overview_streams_a_running_syncs_records_so_far_then_its_end() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let (sim, _sim_server, connector, browser) = connector_and_viewer(&hub, "console-live", 1000).await;
    // Four pages of 250, each answered after 800 ms: the run is seen between its pages.
    sim.set_faults(hub_sim::Faults {
        latency_ms: 800,
        ..Default::default()
    });
    let session = browser.cookie(&hub.url("/"), "hub_session").unwrap();
    let mut events = reqwest::Client::new()
        .get(hub.url("/events"))
        .header(COOKIE, format!("hub_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    let (status, run) = hub
        .post(&format!("/api/v1/connectors/{connector}/run"), serde_json::json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    let mut stream = String::new();
    let mut seen_progress = false;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while tokio::time::Instant::now() < deadline {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), events.chunk())
            .await
            .expect("the stream sends within 10 s while a run goes")
            .unwrap()
            .expect("the stream stays open");
        stream.push_str(&String::from_utf8_lossy(&chunk));
        // A running sync with records counted so far, then the run's end.
        seen_progress |= stream
            .split("event: live")
            .any(|event| event.contains("berjalan, sejauh ini") && !event.contains(">0 diterima"));
        if seen_progress
            && stream
                .split("event: live")
                .last()
                .is_some_and(|e| e.contains("1000 diterima"))
        {
            return;
        }
    }
    panic!("the live overview never showed the run's progress and end: {stream}");
}
