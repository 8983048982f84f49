//! Reading what a page rendered out of the DOM text [`browser::dump_dom`](crate::browser::dump_dom)
//! returns: the tests mark the figures they compare with ids and `data-*` attributes.

/// The value of attribute `attr` of the element whose `id` is `id` in `dom`.
pub fn attr_by_id(dom: &str, id: &str, attr: &str) -> Option<String> {
    let at = dom.find(&format!(" id=\"{id}\""))?;
    let start = dom[..at].rfind('<')?;
    tag_attr(&dom[start..], attr)
}

/// The value of attribute `attr` of the first tag of `html`.
pub fn tag_attr(html: &str, attr: &str) -> Option<String> {
    let tag = &html[..html.find('>')?];
    let key = format!(" {attr}=\"");
    let from = tag.find(&key)? + key.len();
    let len = tag[from..].find('"')?;
    Some(tag[from..from + len].replace("&amp;", "&"))
}

/// The text of the element whose `id` is `id` in `dom` up to its first child tag (entities
/// `&amp;`, `&lt;`, `&gt;` decoded).
pub fn text_by_id(dom: &str, id: &str) -> Option<String> {
    let at = dom.find(&format!(" id=\"{id}\""))?;
    let text = &dom[at + dom[at..].find('>')? + 1..];
    let text = &text[..text.find('<').unwrap_or(text.len())];
    Some(
        text.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&nbsp;", "\u{a0}")
            .replace("&amp;", "&"),
    )
}

/// The `data-value` of the element with this id, as a number (panics, showing the DOM,
/// when there is none).
pub fn number(dom: &str, id: &str) -> f64 {
    attr_by_id(dom, id, "data-value")
        .unwrap_or_else(|| panic!("no data-value on #{id} in:\n{dom}"))
        .parse()
        .unwrap_or_else(|e| panic!("data-value of #{id} is not a number: {e}"))
}

/// Where the page tests write their screenshots: the folder `STRATA_SCREENSHOTS` names, if
/// set (e.g. `$PWD/docs/screenshots` from the workspace's root; cargo runs a test in its
/// crate's folder, so a relative path starts there).
pub fn screenshot_dir() -> Option<std::path::PathBuf> {
    std::env::var_os("STRATA_SCREENSHOTS").map(std::path::PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_read_by_id() {
        let dom = r#"<div><p id="height" data-value="42" title="a &amp; b">42</p></div>"#;
        assert_eq!(number(dom, "height"), 42.0);
        assert_eq!(attr_by_id(dom, "height", "title").as_deref(), Some("a & b"));
        assert_eq!(attr_by_id(dom, "missing", "title"), None);
        assert_eq!(text_by_id(dom, "height").as_deref(), Some("42"));
        assert_eq!(
            text_by_id(r#"<p id="n">a &lt;b&gt; &amp; c<i>d</i></p>"#, "n").as_deref(),
            Some("a <b> & c")
        );
        assert_eq!(
            tag_attr(r#"<td class="num">1</td>"#, "class").as_deref(),
            Some("num")
        );
    }
}
