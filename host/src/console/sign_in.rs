//! Signing in to the console and out again: the SSO (OpenID Connect authorization code with
//! PKCE, RFC 7636) or an API key, then a server-side session (`auth/session.rs`). Every
//! sign-in, refusal and sign-out is audited.

use super::i18n::Lang;
use super::{PageError, layout};
use crate::api::{AppState, Problem};
use crate::audit::{Event, Outcome};
use crate::auth::{Caller, session};
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use maud::html;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The cookie that ties an SSO round trip to the browser that started it (its `state`).
const STATE_COOKIE: &str = "hub_sign_in";
/// How long a browser has to come back from the SSO.
const ROUND_TRIP: Duration = Duration::from_secs(600);
/// Sign-ins under way at once; more are refused, so a flood of `/login/sso` cannot grow the
/// map without end. Ten thousand is far beyond any ministry's staff signing in at once.
const MAX_PENDING: usize = 10_000;

/// SSO sign-ins under way: each `state` with its PKCE verifier, until the browser comes back.
#[derive(Default)]
pub struct Pending(Mutex<HashMap<String, (String, Instant)>>);

impl Pending {
    fn insert(&self, state: String, verifier: String) -> bool {
        let mut pending = self.0.lock().unwrap_or_else(|e| e.into_inner());
        pending.retain(|_, (_, at)| at.elapsed() < ROUND_TRIP);
        if pending.len() >= MAX_PENDING {
            return false;
        }
        pending.insert(state, (verifier, Instant::now()));
        true
    }

    /// The verifier of `state`, once.
    fn take(&self, state: &str) -> Option<String> {
        let mut pending = self.0.lock().unwrap_or_else(|e| e.into_inner());
        pending
            .remove(state)
            .filter(|(_, at)| at.elapsed() < ROUND_TRIP)
            .map(|(verifier, _)| verifier)
    }
}

pub async fn page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    sign_in_page(&state, Lang::of(&headers), StatusCode::OK, None)
}

fn sign_in_page(state: &AppState, lang: Lang, status: StatusCode, error: Option<&str>) -> Response {
    let text = lang.text();
    let sso = state
        .oidc
        .as_ref()
        .is_some_and(|o| o.config().console_client_id.is_some());
    let body = html! {
        h1 { (text.sign_in_title) }
        @if let Some(error) = error {
            p.error role="alert" { (error) }
        }
        @if sso {
            p { a.button.primary href="/login/sso" { (text.sign_in_sso) } }
            p.or { (text.or) }
        }
        form method="post" action="/login" {
            h2 { (text.sign_in_key) }
            label for="api_key" { (text.api_key) }
            input #api_key type="password" name="api_key" autocomplete="off" required;
            button type="submit" { (text.sign_in_with_key) }
        }
    };
    (status, layout::bare(lang, text.sign_in, body)).into_response()
}

#[derive(Deserialize)]
pub struct KeyForm {
    api_key: String,
}

/// `POST /login` with an API key (or an SSO token pasted in its place).
pub async fn with_key(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<KeyForm>) -> Response {
    let lang = Lang::of(&headers);
    if let Err(refusal) = same_origin(&state, &headers) {
        return refusal.into_response();
    }
    match crate::api::auth::caller_of(&state, form.api_key.trim()).await {
        Ok(Ok(caller)) => {
            // An SSO token pasted in the key's place signs in as the SSO does.
            let with = match caller.actor.starts_with("api-key:") {
                true => SignedInWith::ApiKey(form.api_key.trim()),
                false => SignedInWith::Sso,
            };
            match start(&state, &caller, with).await {
                Ok(cookie) => ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response(),
                Err(error) => PageError::from(error).into_response(),
            }
        }
        Ok(Err(reason)) => {
            let event = Event::new("anonymous", "auth.failed", "console")
                .outcome(Outcome::Denied)
                .details(json!({ "method": "api-key", "reason": reason }));
            state.manager.audit().record(event).await;
            sign_in_page(&state, lang, StatusCode::UNAUTHORIZED, Some(&reason))
        }
        Err(problem) => PageError::from(problem).into_response(),
    }
}

/// `GET /login/sso`: off to the SSO's sign-in page, with a fresh `state` and PKCE challenge.
pub async fn start_sso(State(state): State<AppState>) -> Response {
    let Some((oidc, client_id)) = sso_client(&state) else {
        return PageError::new(
            StatusCode::NOT_FOUND,
            "this hub has no SSO sign-in: sign in with an API key",
        )
        .into_response();
    };
    let endpoints = match oidc.sign_in_endpoints().await {
        Ok(endpoints) => endpoints,
        Err(error) => return sso_unavailable(&error),
    };
    let sign_in_state = URL_SAFE_NO_PAD.encode(crate::crypto::random_bytes::<16>());
    let verifier = URL_SAFE_NO_PAD.encode(crate::crypto::random_bytes::<32>());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if !state.sign_ins.insert(sign_in_state.clone(), verifier) {
        return PageError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many sign-ins are under way at once; try again in a few minutes",
        )
        .into_response();
    }
    let mut url = match reqwest::Url::parse(&endpoints.authorization) {
        Ok(url) => url,
        Err(error) => return sso_unavailable(&error),
    };
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", &redirect_uri(&state))
        .append_pair("scope", "openid")
        .append_pair("state", &sign_in_state)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    // Lax, not Strict: the browser must send it when the SSO sends it back here.
    let cookie = format!(
        "{STATE_COOKIE}={sign_in_state}; Path=/login; HttpOnly; SameSite=Lax; Max-Age={}{}",
        ROUND_TRIP.as_secs(),
        if state.public_url.starts_with("https://") {
            "; Secure"
        } else {
            ""
        }
    );
    (
        [(
            header::SET_COOKIE,
            HeaderValue::from_str(&cookie).expect("base64url is a valid header value"),
        )],
        Redirect::to(url.as_str()),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /login/callback?code=&state=`: the browser is back from the SSO. The `state` must be
/// the one this browser left with (its cookie), and the code is redeemed with the verifier
/// only this hub holds.
pub async fn callback(State(state): State<AppState>, headers: HeaderMap, Query(back): Query<Callback>) -> Response {
    let lang = Lang::of(&headers);
    if let Some(error) = back.error {
        // An OAuth error code is a short ASCII word (RFC 6749 §4.1.2.1); anything else in the
        // link is not repeated on the page or in the audit log.
        let code = Some(error.as_str())
            .filter(|e| e.len() <= 64 && e.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
            .unwrap_or("an unknown error");
        return refuse(&state, lang, format!("the SSO did not sign you in ({code}); try again")).await;
    }
    let (Some(code), Some(returned)) = (back.code, back.state) else {
        return refuse(
            &state,
            lang,
            "the SSO sent the browser back without a sign-in code; start again".into(),
        )
        .await;
    };
    let started_here = session::cookie_of(&headers, STATE_COOKIE)
        .is_some_and(|mine| subtle::ConstantTimeEq::ct_eq(mine.as_bytes(), returned.as_bytes()).into());
    let verifier = started_here.then(|| state.sign_ins.take(&returned)).flatten();
    let Some(verifier) = verifier else {
        return refuse(
            &state,
            lang,
            "this sign-in was not started in this browser, or took over 10 minutes; start again".into(),
        )
        .await;
    };
    let Some((oidc, client_id)) = sso_client(&state) else {
        return refuse(&state, lang, "this hub has no SSO sign-in".into()).await;
    };
    let verified = match oidc.sign_in_endpoints().await {
        Ok(endpoints) => {
            oidc.redeem(&endpoints.token, client_id, &code, &verifier, &redirect_uri(&state))
                .await
        }
        Err(error) => Err(error),
    };
    let caller = match verified {
        Ok(verified) => verified.caller,
        Err(error) => return refuse(&state, lang, error.to_string()).await,
    };
    let cookie = match start(&state, &caller, SignedInWith::Sso).await {
        Ok(cookie) => cookie,
        Err(error) => return PageError::from(error).into_response(),
    };
    let forget_state = format!("{STATE_COOKIE}=; Path=/login; HttpOnly; SameSite=Lax; Max-Age=0");
    // A page that moves on, not a redirect: a SameSite=Strict cookie set at the end of a
    // redirect chain that began at another site is not sent on the chain's last hop.
    let body = html! {
        meta http-equiv="refresh" content="0; url=/";
        p { a href="/" { (lang.text().signed_in_continue) } }
    };
    let mut response = layout::bare(lang, lang.text().sign_in, body).into_response();
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, cookie);
    headers.append(header::SET_COOKIE, HeaderValue::from_str(&forget_state).expect("ascii"));
    response
}

/// A refused SSO sign-in: audited, and the sign-in page again with the reason.
async fn refuse(state: &AppState, lang: Lang, reason: String) -> Response {
    let event = Event::new("anonymous", "auth.failed", "console")
        .outcome(Outcome::Denied)
        .details(json!({ "method": "sso", "reason": reason }));
    state.manager.audit().record(event).await;
    sign_in_page(state, lang, StatusCode::UNAUTHORIZED, Some(&reason))
}

#[derive(Deserialize)]
pub struct SignOutForm {
    csrf: String,
}

/// `POST /logout`: ends the session (the form carries its CSRF token: another site must not
/// sign people out).
pub async fn sign_out(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<SignOutForm>) -> Response {
    let Some(token) = session::token_of(&headers) else {
        return Redirect::to("/login").into_response();
    };
    if !session::csrf_matches(token, &form.csrf) {
        return PageError::new(
            StatusCode::FORBIDDEN,
            "signing out needs the page's CSRF token; reload the page and sign out again",
        )
        .into_response();
    }
    let caller = state.sessions.caller(token).await.ok().flatten();
    if let Err(error) = state.sessions.end(token).await {
        return PageError::from(error).into_response();
    }
    if let Some(caller) = caller {
        state
            .manager
            .audit()
            .record(Event::new(&caller.actor, "auth.logout", "console"))
            .await;
    }
    (
        [(header::SET_COOKIE, state.sessions.clearing_cookie())],
        Redirect::to("/login"),
    )
        .into_response()
}

/// What a browser signed in with.
enum SignedInWith<'a> {
    Sso,
    /// This API key: revoking it ends the session.
    ApiKey(&'a str),
}

/// Starts a session and audits the sign-in; the answer is its `Set-Cookie`.
async fn start(state: &AppState, caller: &Caller, with: SignedInWith<'_>) -> Result<HeaderValue, Problem> {
    if caller.smart.is_some() {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "this SSO token is limited by SMART scopes to parts of the FHIR API, and a console session would not be: \
             sign in with the SSO's sign-in page or an API key instead",
        ));
    }
    let (method, key_hash) = match with {
        SignedInWith::Sso => ("sso", None),
        SignedInWith::ApiKey(key) => ("api-key", Some(crate::api::hash_key(key))),
    };
    let token = state.sessions.start(caller, key_hash.as_deref()).await?;
    let event = Event::new(&caller.actor, "auth.login", "console")
        .details(json!({ "method": method, "role": caller.role, "pii_read": caller.pii_read }));
    state.manager.audit().try_record(&event).await?;
    Ok(state.sessions.cookie(&token))
}

fn sso_client(state: &AppState) -> Option<(&crate::auth::OidcVerifier, &str)> {
    let oidc = state.oidc.as_deref()?;
    let client_id = oidc.config().console_client_id.as_deref()?;
    Some((oidc, client_id))
}

fn redirect_uri(state: &AppState) -> String {
    format!("{}/login/callback", state.public_url)
}

fn sso_unavailable(error: &dyn std::fmt::Display) -> Response {
    tracing::warn!(%error, "the console cannot reach the SSO to sign in");
    PageError::new(
        StatusCode::BAD_GATEWAY,
        format!("the SSO cannot be reached to sign in ({error}); try again, or sign in with an API key"),
    )
    .into_response()
}

/// A sign-in form posted from another site is refused: it would sign the victim's browser in
/// as the attacker (login CSRF). Browsers say where a form came from in `Sec-Fetch-Site` or
/// `Origin`.
fn same_origin(state: &AppState, headers: &HeaderMap) -> Result<(), PageError> {
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let cross_site = match (site, origin) {
        (Some(site), _) => site != "same-origin" && site != "none",
        (None, Some(origin)) => origin.trim_end_matches('/') != &*state.public_url,
        (None, None) => false,
    };
    if cross_site {
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "this sign-in form was sent from another site; open the hub's own sign-in page",
        ));
    }
    Ok(())
}
