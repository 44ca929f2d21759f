//! Searchset Bundles: the matches of a page, the total, and `self`/`next` links. Pages are
//! cut by cursor (the last id of the page, in id order), not by offset, so records stored
//! or changed while a client pages neither shift a match onto a page it has read (a repeat)
//! nor off the one it is about to read (a skip).

use super::element::Element;
use super::search::{self, SearchRequest};

/// The searchset Bundle of one page of `request`, a search of `resource_type` with the query
/// string `query` on the server at `base` (its public URL): the matches in order (cut to
/// `_elements`), the total when counted, and a `next` link after the last match (`last_id`)
/// when the page is full.
pub fn searchset(
    base: &str,
    resource_type: &str,
    query: Option<&str>,
    request: &SearchRequest,
    matches: Vec<Element>,
    last_id: Option<&str>,
    total: Option<i64>,
) -> Element {
    let full = request.limit() > 0 && matches.len() as i64 == request.limit();
    let next_cursor = last_id.filter(|_| full);
    let search_url = |query: &str| {
        if query.is_empty() {
            format!("{base}/{resource_type}")
        } else {
            format!("{base}/{resource_type}?{query}")
        }
    };
    let asked: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let encode = |pairs: &[(String, String)]| {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    };
    let mut links = vec![link("self", &search_url(&encode(&asked)))];
    if let Some(cursor) = next_cursor {
        let mut next: Vec<(String, String)> = asked.into_iter().filter(|(k, _)| k != "_cursor").collect();
        next.push(("_cursor".into(), cursor.to_string()));
        links.push(link("next", &search_url(&encode(&next))));
    }
    let entries: Vec<Element> = matches
        .into_iter()
        .map(|resource| match &request.elements {
            Some(elements) => search::subset(resource, elements),
            None => resource,
        })
        .map(|resource| {
            let id = match resource.get("id") {
                Some(Element::Text(id)) => id.clone(),
                _ => String::new(),
            };
            Element::object()
                .with("fullUrl", format!("{base}/{resource_type}/{id}"))
                .with("resource", resource)
                .with("search", Element::object().with("mode", "match"))
        })
        .collect();
    Element::resource("Bundle")
        .with("type", "searchset")
        .with_some("total", total)
        .with("link", links)
        .with("entry", entries)
}

fn link(relation: &str, url: &str) -> Element {
    Element::object().with("relation", relation).with("url", url)
}
