//! Rust source read as text, as far as imports go: comments, strings and
//! char literals blanked out, then the paths a file names and the `use`
//! trees they come in.

/// `text` with comments, string and char literals blanked out (their
/// length kept, so nothing else moves).
pub fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                out.push(b' ');
                i += 1;
            }
        } else if rest.starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(if b[i] == b'\n' { b'\n' } else { b' ' });
                    i += 1;
                }
            }
        } else if let Some(len) = raw_string_len(rest) {
            blank(&mut out, &b[i..i + len]);
            i += len;
        } else if rest[0] == b'"' && !prev_is_ident(b, i) {
            let start = i;
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(b.len());
            blank(&mut out, &b[start..i]);
        } else if rest[0] == b'\'' {
            // A char literal ('x', '\n', '\u{7f}') or a lifetime ('a).
            let len = if rest.get(1) == Some(&b'\\') {
                rest.iter().skip(2).position(|&c| c == b'\'').map(|p| p + 3)
            } else {
                let ch = text[i + 1..].chars().next().map_or(0, char::len_utf8);
                (rest.get(1 + ch) == Some(&b'\'')).then_some(ch + 2)
            };
            let len = len.unwrap_or(1);
            blank(&mut out, &b[i..i + len]);
            i += len;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn prev_is_ident(b: &[u8], i: usize) -> bool {
    i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')
}

/// The length of a raw string (`r"…"`, `r#"…"#`, `br"…"`) starting here.
fn raw_string_len(b: &[u8]) -> Option<usize> {
    let start = if b.starts_with(b"br") { 2 } else { 1 };
    if b.first() != Some(&b'r') && !b.starts_with(b"br") {
        return None;
    }
    let hashes = b[start..].iter().take_while(|&&c| c == b'#').count();
    if b.get(start + hashes) != Some(&b'"') {
        return None;
    }
    let mut close = vec![b'"'];
    close.extend(std::iter::repeat_n(b'#', hashes));
    let body = start + hashes + 1;
    let end = b[body..].windows(close.len()).position(|w| w == close)?;
    Some(body + end + close.len())
}

fn blank(out: &mut Vec<u8>, s: &[u8]) {
    out.extend(s.iter().map(|&c| if c == b'\n' { b'\n' } else { b' ' }));
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The paths a file names, each with the inline module it is named from
/// (`mod tests { use super::*; }` names its file's own module as `super`).
pub fn named_paths(code: &str) -> Vec<(Vec<String>, Vec<String>)> {
    let chars: Vec<char> = code.chars().collect();
    let mut found = Vec::new();
    // Inline modules open at a brace depth: (name, depth inside).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '{' {
            depth += 1;
            i += 1;
            continue;
        }
        if c == '}' {
            depth = depth.saturating_sub(1);
            while inline.last().is_some_and(|(_, d)| *d > depth) {
                inline.pop();
            }
            i += 1;
            continue;
        }
        if !is_ident(c) || (i > 0 && (is_ident(chars[i - 1]) || chars[i - 1] == ':')) {
            i += 1;
            continue;
        }
        let word_end = (i..chars.len())
            .find(|&j| !is_ident(chars[j]))
            .unwrap_or(chars.len());
        let word: String = chars[i..word_end].iter().collect();
        if word == "mod" {
            let name_start = skip_space(&chars, word_end);
            let name_end = (name_start..chars.len())
                .find(|&j| !is_ident(chars[j]))
                .unwrap_or(chars.len());
            let after = skip_space(&chars, name_end);
            if chars.get(after) == Some(&'{') {
                let name: String = chars[name_start..name_end].iter().collect();
                inline.push((name, depth + 1));
            }
            i = name_end;
            continue;
        }
        if word == "use" {
            let end = (word_end..chars.len())
                .find(|&j| chars[j] == ';')
                .unwrap_or(chars.len());
            let tree: String = chars[word_end..end].iter().collect();
            let here: Vec<String> = inline.iter().map(|(n, _)| n.clone()).collect();
            for path in expand_use(tree.trim()) {
                found.push((here.clone(), path));
            }
            i = end;
            continue;
        }
        // A path: word(::word)*
        let mut segments = vec![word];
        let mut j = word_end;
        while chars.get(j) == Some(&':') && chars.get(j + 1) == Some(&':') {
            let s = j + 2;
            let e = (s..chars.len())
                .find(|&k| !is_ident(chars[k]))
                .unwrap_or(chars.len());
            if e == s {
                break;
            }
            segments.push(chars[s..e].iter().collect());
            j = e;
        }
        if segments.len() > 1 {
            found.push((inline.iter().map(|(n, _)| n.clone()).collect(), segments));
        }
        i = j;
    }
    found
}

fn skip_space(chars: &[char], mut i: usize) -> usize {
    while chars.get(i).is_some_and(|c| c.is_whitespace()) {
        i += 1;
    }
    i
}

/// `a::{b, c::{d, self}}` as `a::b`, `a::c::d`, `a::c`.
pub fn expand_use(tree: &str) -> Vec<Vec<String>> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap_or("").trim();
        let segments: Vec<String> = path
            .split("::")
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty() && s != "*" && s != "self")
            .collect();
        return if segments.is_empty() {
            vec![]
        } else {
            vec![segments]
        };
    };
    let prefix = tree[..open].trim().trim_end_matches("::");
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let (mut items, mut depth, mut start) = (Vec::new(), 0, 0);
    for (k, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..k]);
                start = k + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
        .into_iter()
        .filter(|item| !item.trim().is_empty())
        .flat_map(|item| {
            let joined = if prefix.is_empty() {
                item.trim().to_owned()
            } else {
                format!("{prefix}::{}", item.trim())
            };
            expand_use(&joined)
        })
        .collect()
}
