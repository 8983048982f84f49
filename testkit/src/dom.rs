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

/// The `<tr>` of `dom` holding `marker` (an attribute, `name="value"`, or the start of the
/// row's opening tag up to what tells it apart), up to its `</tr>` (panics, showing the DOM,
/// when there is none).
pub fn row<'a>(dom: &'a str, marker: &str) -> &'a str {
    let at = dom
        .find(marker)
        .unwrap_or_else(|| panic!("no row {marker} in:\n{dom}"));
    let start = if dom[at..].starts_with("<tr") {
        at
    } else {
        dom[..at].rfind("<tr").expect("a row's <tr")
    };
    let row = &dom[start..];
    &row[..row.find("</tr>").expect("a row's </tr>")]
}

/// The table of `dom` whose id is `id`, up to its `</table>`.
pub fn table<'a>(dom: &'a str, id: &str) -> &'a str {
    let table = &dom[dom
        .find(&format!(" id=\"{id}\""))
        .unwrap_or_else(|| panic!("no table #{id} in:\n{dom}"))..];
    &table[..table.find("</table>").expect("a table's </table>")]
}

/// The first tag of `html` and the text after it, up to the next tag (as serialized).
fn tag_and_text(html: &str) -> (&str, &str) {
    let end = html.find('>').expect("a tag's >");
    let text = &html[end + 1..];
    (&html[..=end], &text[..text.find('<').unwrap_or(text.len())])
}

/// The cells (`<td ...>text`) of a row, in order: their opening tag and their text.
pub fn cells(row: &str) -> Vec<(&str, &str)> {
    row.match_indices("<td")
        .map(|(at, _)| tag_and_text(&row[at..]))
        .collect()
}

/// The cell of `row` whose class is `class`: its opening tag and its text (as serialized;
/// panics when there is none).
pub fn cell<'a>(row: &'a str, class: &str) -> (&'a str, &'a str) {
    let at = row
        .find(&format!("class=\"{class}\""))
        .unwrap_or_else(|| panic!("no {class} cell in {row}"));
    tag_and_text(&row[row[..at].rfind('<').expect("a cell's tag")..])
}

/// The `data-value` of the cell of `row` whose class is `class`, as a number.
pub fn cell_value(row: &str, class: &str) -> f64 {
    tag_attr(cell(row, class).0, "data-value")
        .unwrap_or_else(|| panic!("no data-value on the {class} cell of {row}"))
        .parse()
        .unwrap_or_else(|e| panic!("data-value of the {class} cell is not a number: {e}"))
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

    #[test]
    fn rows_tables_and_cells() {
        let dom = concat!(
            r#"<table id="t"><tr data-worker="a"><td class="name">a</td><td class="hr" data-value="2.5">2.50 H/s</td></tr>"#,
            r#"<tr data-worker="b"><td class="name">b<i>!</i></td><td class="hr" data-value="1">1 H/s</td></tr></table>"#,
            r#"<table id="u"></table>"#
        );
        let t = table(dom, "t");
        assert!(t.starts_with(" id=\"t\"") && !t.contains("\"u\""), "{t}");
        let b = row(t, "data-worker=\"b\"");
        assert!(
            b.starts_with("<tr data-worker=\"b\"") && !b.contains("</tr>"),
            "{b}"
        );
        assert_eq!(
            cells(b),
            vec![
                ("<td class=\"name\">", "b"),
                ("<td class=\"hr\" data-value=\"1\">", "1 H/s")
            ]
        );
        assert_eq!(cell(b, "hr").1, "1 H/s");
        assert_eq!(cell_value(row(dom, "<tr data-worker=\"a"), "hr"), 2.5);
    }
}
