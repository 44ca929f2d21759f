//! Searchset Bundles: the matches of a page, the total, and `self`/`next` links. Pages are
//! cut by cursor (the last id of the page, in id order), not by offset, so records stored
//! or changed while a client pages neither shift a match onto a page it has read (a repeat)
//! nor off the one it is about to read (a skip).

use super::element::Element;

/// One page of a search.
pub struct Page {
    /// The matches, in order.
    pub matches: Vec<Element>,
    pub total: Option<i64>,
    /// Where the next page starts, when there may be one.
    pub next_cursor: Option<String>,
}

/// The searchset Bundle of `page`, for a search of `resource_type` at `base` (the server's
/// public URL) with the query string `query`.
pub fn searchset(base: &str, resource_type: &str, query: Option<&str>, page: Page) -> Element {
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
    if let Some(cursor) = page.next_cursor {
        let mut next: Vec<(String, String)> = asked.into_iter().filter(|(k, _)| k != "_cursor").collect();
        next.push(("_cursor".into(), cursor));
        links.push(link("next", &search_url(&encode(&next))));
    }
    let entries: Vec<Element> = page
        .matches
        .into_iter()
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
        .with_some("total", page.total)
        .with("link", links)
        .with("entry", entries)
}

fn link(relation: &str, url: &str) -> Element {
    Element::object().with("relation", relation).with("url", url)
}
