//! A small delimited-text record parser: RFC 4180 quoting (for one-byte
//! delimiters), multi-byte delimiters such as MovieLens' `::`, LF or CRLF
//! line ends, and physical line numbers for error messages.
//!
//! It works on in-memory chunks that start at a record boundary, which
//! [`ChunkReader`] guarantees, so chunks can be parsed in parallel.

use std::io::Read;

/// One parsed record: its fields live in the chunk or in a scratch buffer.
#[derive(Default)]
pub struct Record {
    spans: Vec<(usize, usize, bool)>,
    scratch: Vec<u8>,
    /// Physical lines the record spans (more than 1 with quoted newlines).
    pub lines: usize,
}

impl Record {
    /// Number of fields.
    pub fn len(&self) -> usize {
        self.spans.len()
    }
    /// Field `k` as bytes.
    pub fn field<'a>(&'a self, data: &'a [u8], k: usize) -> &'a [u8] {
        let (s, e, scratch) = self.spans[k];
        if scratch {
            &self.scratch[s..e]
        } else {
            &data[s..e]
        }
    }
    /// Field `k` as text, given the chunk as text (valid UTF-8 everywhere).
    /// Field boundaries are ASCII bytes, so slicing cannot split a character.
    pub fn field_str<'a>(&'a self, text: &'a str, k: usize) -> Option<&'a str> {
        let (s, e, scratch) = self.spans[k];
        if scratch {
            std::str::from_utf8(&self.scratch[s..e]).ok()
        } else {
            text.get(s..e)
        }
    }

    /// Whether the record is an empty line.
    pub fn is_blank(&self, data: &[u8]) -> bool {
        self.spans.len() == 1 && self.field(data, 0).is_empty()
    }
}

/// Delimiter and quoting of a delimited file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dialect {
    /// The field delimiter (one byte, or several such as `::`).
    pub delimiter: Vec<u8>,
    /// Whether double quotes are honoured (only with a one-byte delimiter).
    pub quoting: bool,
}

impl Dialect {
    /// A dialect for `delimiter`; quoting is on for one-byte delimiters.
    pub fn new(delimiter: &[u8]) -> Dialect {
        Dialect {
            delimiter: delimiter.to_vec(),
            quoting: delimiter.len() == 1,
        }
    }
}

#[inline]
fn starts_with_at(data: &[u8], pos: usize, pat: &[u8]) -> bool {
    match pat {
        [c] => data.get(pos) == Some(c),
        _ => data.len() >= pos + pat.len() && &data[pos..pos + pat.len()] == pat,
    }
}

/// Parses the record starting at `*pos` into `rec`, advancing `*pos` past its
/// line end. Returns `false` at the end of the data.
pub fn next_record(data: &[u8], pos: &mut usize, d: &Dialect, rec: &mut Record) -> bool {
    rec.spans.clear();
    rec.scratch.clear();
    rec.lines = 1;
    if *pos >= data.len() {
        return false;
    }
    let delim = &d.delimiter[..];
    let d0 = delim[0];
    let mut p = *pos;
    loop {
        if d.quoting && data.get(p) == Some(&b'"') {
            // Quoted field: copy into scratch, unescaping "" to ".
            p += 1;
            let start = rec.scratch.len();
            loop {
                match data[p..].iter().position(|&c| c == b'"') {
                    None => {
                        rec.lines += data[p..].iter().filter(|&&c| c == b'\n').count();
                        rec.scratch.extend_from_slice(&data[p..]);
                        p = data.len();
                        break;
                    }
                    Some(off) => {
                        let q = p + off;
                        rec.lines += data[p..q].iter().filter(|&&c| c == b'\n').count();
                        rec.scratch.extend_from_slice(&data[p..q]);
                        if data.get(q + 1) == Some(&b'"') {
                            rec.scratch.push(b'"');
                            p = q + 2;
                        } else {
                            p = q + 1;
                            break;
                        }
                    }
                }
            }
            // Anything between the closing quote and the delimiter is kept as is.
            while p < data.len() && data[p] != d0 && data[p] != b'\n' {
                if data[p] != b'\r' {
                    rec.scratch.push(data[p]);
                }
                p += 1;
            }
            rec.spans.push((start, rec.scratch.len(), true));
        } else {
            let start = p;
            if delim.len() == 1 {
                p += data[p..]
                    .iter()
                    .position(|&c| c == d0 || c == b'\n')
                    .unwrap_or(data.len() - p);
            } else {
                while p < data.len()
                    && data[p] != b'\n'
                    && !(data[p] == d0 && starts_with_at(data, p, delim))
                {
                    p += 1;
                }
            }
            let mut end = p;
            if (p >= data.len() || data[p] == b'\n') && end > start && data[end - 1] == b'\r' {
                end -= 1;
            }
            rec.spans.push((start, end, false));
        }
        if p < data.len() && data[p] == d0 && starts_with_at(data, p, delim) {
            p += delim.len();
            continue;
        }
        // End of line or of data.
        *pos = p + 1;
        return true;
    }
}

/// Reads a stream in chunks that each end at a record boundary.
pub struct ChunkReader<R> {
    inner: R,
    carry: Vec<u8>,
    quoting: bool,
    eof: bool,
    chunk_size: usize,
    /// Physical line number of the next chunk's first line (1-based).
    pub next_line: usize,
}

/// A chunk of whole records.
pub struct Chunk {
    /// The bytes.
    pub data: Vec<u8>,
    /// Physical line number of its first line.
    pub first_line: usize,
}

impl<R: Read> ChunkReader<R> {
    /// A reader that honours quotes when finding record boundaries if `quoting`.
    pub fn new(
        inner: R,
        carry: Vec<u8>,
        first_line: usize,
        quoting: bool,
        chunk_size: usize,
    ) -> Self {
        ChunkReader {
            inner,
            carry,
            quoting,
            eof: false,
            chunk_size,
            next_line: first_line,
        }
    }

    /// The next chunk, or `None` at the end of the stream.
    pub fn next_chunk(&mut self) -> std::io::Result<Option<Chunk>> {
        let mut buf = std::mem::take(&mut self.carry);
        loop {
            if !self.eof && buf.len() < self.chunk_size {
                let want = self.chunk_size.max(buf.len() + 1) - buf.len();
                let old = buf.len();
                buf.resize(old + want, 0);
                let mut filled = old;
                while filled < buf.len() {
                    let n = self.inner.read(&mut buf[filled..])?;
                    if n == 0 {
                        self.eof = true;
                        break;
                    }
                    filled += n;
                }
                buf.truncate(filled);
            }
            if buf.is_empty() {
                return Ok(None);
            }
            if self.eof {
                return Ok(Some(self.emit(buf)));
            }
            match self.boundary(&buf) {
                Some(end) => {
                    self.carry = buf.split_off(end);
                    return Ok(Some(self.emit(buf)));
                }
                // A record longer than the buffer: read more.
                None => self.chunk_size *= 2,
            }
        }
    }

    fn emit(&mut self, data: Vec<u8>) -> Chunk {
        let first_line = self.next_line;
        self.next_line += data.iter().filter(|&&c| c == b'\n').count();
        Chunk { data, first_line }
    }

    /// One past the last newline that is not inside quotes.
    fn boundary(&self, buf: &[u8]) -> Option<usize> {
        if !self.quoting || !buf.contains(&b'"') {
            return buf.iter().rposition(|&c| c == b'\n').map(|p| p + 1);
        }
        let mut in_quotes = false;
        let mut last = None;
        for (k, &c) in buf.iter().enumerate() {
            if c == b'"' {
                in_quotes = !in_quotes;
            } else if c == b'\n' && !in_quotes {
                last = Some(k + 1);
            }
        }
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, d: &Dialect) -> Vec<Vec<String>> {
        let data = text.as_bytes();
        let mut pos = 0;
        let mut rec = Record::default();
        let mut out = Vec::new();
        while next_record(data, &mut pos, d, &mut rec) {
            out.push(
                (0..rec.len())
                    .map(|k| String::from_utf8_lossy(rec.field(data, k)).into_owned())
                    .collect(),
            );
        }
        out
    }

    #[test]
    fn quotes_crlf_and_multibyte() {
        let c = Dialect::new(b",");
        assert_eq!(
            parse("a,b\r\n\"x,1\",\"he said \"\"hi\"\"\"\n", &c),
            vec![vec!["a", "b"], vec!["x,1", "he said \"hi\""]]
        );
        assert_eq!(
            parse("a,\"multi\nline\",c\n", &c),
            vec![vec!["a", "multi\nline", "c"]]
        );
        assert_eq!(
            parse("1,,3\n\n4,5,6", &c),
            vec![vec!["1", "", "3"], vec![""], vec!["4", "5", "6"]]
        );
        let ml = Dialect::new(b"::");
        assert_eq!(
            parse("1::1193::5::978300760\n", &ml),
            vec![vec!["1", "1193", "5", "978300760"]]
        );
        assert_eq!(parse("a:b::c\n", &ml), vec![vec!["a:b", "c"]]);
    }

    #[test]
    fn chunks_end_at_record_boundaries() {
        let text = "h1,h2\n\"a\nb\",1\nc,2\n\"d\n\n\",3\ne,4\n";
        for size in 1..text.len() + 2 {
            let mut r = ChunkReader::new(text.as_bytes(), Vec::new(), 1, true, size);
            let mut all = Vec::new();
            let mut lines = Vec::new();
            while let Some(ch) = r.next_chunk().unwrap() {
                lines.push(ch.first_line);
                all.extend(parse(
                    std::str::from_utf8(&ch.data).unwrap(),
                    &Dialect::new(b","),
                ));
            }
            assert_eq!(all.len(), 5, "chunk size {size}: {all:?}");
            assert_eq!(all[1], vec!["a\nb", "1"]);
            assert_eq!(all[3], vec!["d\n\n", "3"]);
            assert_eq!(lines[0], 1);
        }
    }
}
