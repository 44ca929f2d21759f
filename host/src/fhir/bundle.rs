//! Searchset Bundles: the matches of a page, the total, and `self`/`next` links. Pages are
//! cut by cursor (the last id of the page, in id order), not by offset, so records stored
//! or changed while a client pages neither shift a match onto a page it has read (a repeat)
//! nor off the one it is about to read (a skip).

use super::element::Element;
use super::search::{self, SearchRequest};

/// One page of a search's answer.
pub struct Page<'a> {
    /// In order.
    pub matches: Vec<Element>,
    /// What `_include` added.
    pub included: Vec<Element>,
    /// The id of the last match, where the next page starts.
    pub last_id: Option<&'a str>,
    /// When counted.
    pub total: Option<i64>,
}

/// The searchset Bundle of one page of `request`, a search of `resource_type` with the query
/// string `query` on the server at `base` (its public URL): the matches in order (cut to
/// `_elements`), then what they include, the total when counted, and a `next` link after the
/// last match when the page is full.
pub fn searchset(base: &str, resource_type: &str, query: Option<&str>, request: &SearchRequest, page: Page) -> Element {
    let full = request.limit() > 0 && page.matches.len() as i64 == request.limit();
    let next_cursor = page.last_id.filter(|_| full);
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
    let matches = page.matches.into_iter().map(|resource| match &request.elements {
        Some(elements) => search::subset(resource, elements),
        None => resource,
    });
    let entries: Vec<Element> = (matches.map(|resource| (resource, "match")))
        .chain(page.included.into_iter().map(|resource| (resource, "include")))
        .map(|(resource, mode)| {
            let text = |name| match resource.get(name) {
                Some(Element::Text(text)) => text.clone(),
                _ => String::new(),
            };
            Element::object()
                .with("fullUrl", format!("{base}/{}/{}", text("resourceType"), text("id")))
                .with("resource", resource)
                .with("search", Element::object().with("mode", mode))
        })
        .collect();
    Element::resource("Bundle")
        .with("type", "searchset")
        .with_some("total", page.total)
        .with("link", links)
        .with("entry", entries)
}

pub(super) fn link(relation: &str, url: &str) -> Element {
    Element::object().with("relation", relation).with("url", url)
}
