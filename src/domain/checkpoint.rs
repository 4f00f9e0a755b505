//! Signed checkpoints of the audit chain: the checkpoint line format, signing, and the
//! verification of a sequence of checkpoints against the chain as it is read back. Pure.
//!
//! A checkpoint is one JSON line:
//! `{"at","head_hash","key","marks","marks_from","newest_id","rows","sig","v"}` where `rows` is
//! the number of audit rows up to and including `newest_id`, `head_hash` that row's chain hash,
//! `key` the signer's public key (`ed25519:<64 hex>`) and `sig` an ed25519 signature (128 hex)
//! over [`Checkpoint::signed_message`]. `marks` holds the first [`MARK_LEN`] hex characters of
//! the hash of every row from `marks_from` to `newest_id` (the rows this checkpoint is the first
//! to cover): the signed head hash is what detects a recomputed chain, the marks only say which
//! row changed first. A checkpoint never replaces the chain check; it anchors it. The keys are in
//! `key.rs`.

use std::fmt;

use serde::Deserialize;

mod key;

pub use key::{AuditKey, KeyError, PublicKey};

/// Format version of a checkpoint line.
pub const LINE_VERSION: u32 = 1;
/// Hex characters of a row's hash kept per row in `marks`.
pub const MARK_LEN: usize = 8;
/// Domain separation of the signed message.
const SIGNING_CONTEXT: &str = "gatehouse audit checkpoint v1";

/// A checkpoint file line that cannot be used (1-based line number).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct LineError {
    /// Line number in the file, from 1.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

/// The newest row of the chain and how many rows lead to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// Rows up to and including `newest_id` (0 for an empty chain).
    pub rows: i64,
    /// Id of the newest row (0 for an empty chain).
    pub newest_id: i64,
    /// Its hash (the genesis hash for an empty chain).
    pub head_hash: String,
}

/// How walking the chain ended: complete, broken at a row, or stopped by the visitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainWalk<T> {
    /// Every row links and hashes correctly; this is where the walk ended.
    Complete(ChainHead),
    /// The first row whose id, link or hash is wrong.
    Broken {
        /// Its id.
        id: i64,
        /// What is wrong.
        reason: String,
    },
    /// The visitor stopped the walk with this finding.
    Stopped(T),
}

/// The mark of a row: the first [`MARK_LEN`] characters of its hash.
pub fn mark(hash: &str) -> &str {
    hash.get(..MARK_LEN).unwrap_or(hash)
}

fn is_lower_hex(text: &str) -> bool {
    text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// One signed checkpoint (see the module docs for the line format).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Format version ([`LINE_VERSION`]).
    pub v: u32,
    /// When it was made, RFC 3339 UTC.
    pub at: String,
    /// Rows up to and including `newest_id`.
    pub rows: i64,
    /// Id of the newest row covered (0: the chain was empty).
    pub newest_id: i64,
    /// Hash of that row.
    pub head_hash: String,
    /// First row whose mark is in `marks`.
    pub marks_from: i64,
    /// Marks of rows `marks_from..=newest_id`, concatenated.
    pub marks: String,
    /// The signer's public key, `ed25519:<hex>`.
    pub key: String,
    /// Signature over [`Checkpoint::signed_message`], hex.
    pub sig: String,
}

impl Checkpoint {
    /// Sign `head` at time `at`, with the marks of rows `marks_from..=head.newest_id`.
    pub fn sign(
        key: &AuditKey,
        head: &ChainHead,
        marks_from: i64,
        marks: String,
        at: String,
    ) -> Self {
        let mut cp = Self {
            v: LINE_VERSION,
            at,
            rows: head.rows,
            newest_id: head.newest_id,
            head_hash: head.head_hash.clone(),
            marks_from,
            marks,
            key: key.public().to_string(),
            sig: String::new(),
        };
        cp.sig = hex::encode(key.sign(&cp.signed_message()));
        cp
    }

    /// The bytes the signature covers: every field but `sig`, one per line, after a context.
    pub fn signed_message(&self) -> Vec<u8> {
        format!(
            "{SIGNING_CONTEXT}\nv={}\nat={}\nrows={}\nnewest_id={}\nhead_hash={}\nmarks_from={}\nmarks={}\nkey={}",
            self.v,
            self.at,
            self.rows,
            self.newest_id,
            self.head_hash,
            self.marks_from,
            self.marks,
            self.key
        )
        .into_bytes()
    }

    /// The JSON line (keys sorted, no newline).
    pub fn to_line(&self) -> String {
        serde_json::json!({
            "v": self.v,
            "at": self.at,
            "rows": self.rows,
            "newest_id": self.newest_id,
            "head_hash": self.head_hash,
            "marks_from": self.marks_from,
            "marks": self.marks,
            "key": self.key,
            "sig": self.sig,
        })
        .to_string()
    }

    /// Parse and check the shape of one line (not its signature).
    pub fn parse_line(text: &str) -> Result<Self, String> {
        let cp: Self =
            serde_json::from_str(text).map_err(|e| format!("not a checkpoint line: {e}"))?;
        if cp.v != LINE_VERSION {
            return Err(format!(
                "format version {} is not supported (expected {LINE_VERSION})",
                cp.v
            ));
        }
        if cp.rows < 0 || cp.newest_id < 0 {
            return Err("rows and newest_id must not be negative".into());
        }
        if cp.head_hash.len() != 64 || !is_lower_hex(&cp.head_hash) {
            return Err("head_hash must be 64 lower-case hex digits".into());
        }
        if cp.marks_from < 1 || cp.marks_from > cp.newest_id + 1 {
            return Err(format!(
                "marks_from {} is outside 1..={}",
                cp.marks_from,
                cp.newest_id + 1
            ));
        }
        let expected = usize::try_from(cp.newest_id - cp.marks_from + 1)
            .ok()
            .and_then(|n| n.checked_mul(MARK_LEN));
        if expected != Some(cp.marks.len()) || !is_lower_hex(&cp.marks) {
            return Err(format!(
                "marks must hold {MARK_LEN} hex digits for each row {}..={}",
                cp.marks_from, cp.newest_id
            ));
        }
        PublicKey::parse(&cp.key).map_err(|e| format!("key: {e}"))?;
        if cp.sig.len() != 128 || !is_lower_hex(&cp.sig) {
            return Err("sig must be 128 lower-case hex digits".into());
        }
        Ok(cp)
    }

    /// The key the line names (already checked by [`Checkpoint::parse_line`]).
    pub fn signer(&self) -> Result<PublicKey, KeyError> {
        PublicKey::parse(&self.key)
    }

    /// Check that a trusted key signed this line. The key named in the line is only used
    /// to say which key signed; it is never trusted by itself.
    pub fn verify(&self, trusted: &[PublicKey]) -> Result<(), String> {
        let signer = self.signer().map_err(|e| format!("key: {e}"))?;
        if !trusted.contains(&signer) {
            let names: Vec<String> = trusted.iter().map(PublicKey::fingerprint).collect();
            return Err(format!(
                "signed by {}, which is not a trusted key (trusted: {})",
                signer.fingerprint(),
                names.join(", ")
            ));
        }
        let mut bytes = [0u8; 64];
        hex::decode_to_slice(&self.sig, &mut bytes)
            .map_err(|_| "sig must be 128 hex digits".to_string())?;
        signer.verify(&self.signed_message(), &bytes).map_err(|()| {
            format!(
                "the signature by {} does not match the line: it was forged or altered",
                signer.fingerprint()
            )
        })
    }

    /// "checkpoint AT (line N) signed R rows ending at I", for messages.
    fn describe(&self, line: usize) -> String {
        format!(
            "checkpoint {} (line {line}) signed {} rows ending at {}",
            self.at, self.rows, self.newest_id
        )
    }
}

/// Parse a checkpoint file: one checkpoint per non-blank line, with its line number.
pub fn parse_file(text: &str) -> Result<Vec<(usize, Checkpoint)>, LineError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let cp = Checkpoint::parse_line(line).map_err(|message| LineError {
            line: i + 1,
            message,
        })?;
        out.push((i + 1, cp));
    }
    Ok(out)
}

/// What verifying the chain against its checkpoints found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// A row a checkpoint covers is gone.
    Missing {
        /// The first missing row.
        id: i64,
        /// The checkpoint that covers it, described.
        checkpoint: String,
    },
    /// A row a checkpoint covers has another hash now.
    Changed {
        /// The first changed row.
        id: i64,
        /// The checkpoint it contradicts, described.
        checkpoint: String,
        /// How the change shows.
        detail: String,
    },
    /// The number of rows up to a checkpoint's newest row is not the one it signed.
    Count {
        /// The checkpoint's newest row.
        id: i64,
        /// The checkpoint, described.
        checkpoint: String,
        /// Rows found up to that row.
        found: i64,
    },
}

impl Finding {
    /// The row the finding names.
    pub fn row(&self) -> i64 {
        match self {
            Self::Missing { id, .. } | Self::Changed { id, .. } | Self::Count { id, .. } => *id,
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing { id, checkpoint } => write!(f, "row {id} is missing: {checkpoint}"),
            Self::Changed {
                id,
                checkpoint,
                detail,
            } => write!(
                f,
                "row {id} changed: chain was recomputed after {checkpoint} ({detail})"
            ),
            Self::Count {
                id,
                checkpoint,
                found,
            } => write!(
                f,
                "row count differs at row {id}: {checkpoint}, the store holds {found}"
            ),
        }
    }
}

/// What one checkpoint expects of one row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Expect {
    /// Its mark.
    Mark(u32),
    /// Its full hash, and the number of rows up to it.
    Head,
}

/// Checks rows, read in id order from the chain, against a set of verified checkpoints.
#[derive(Debug)]
pub struct Anchors {
    checkpoints: Vec<(usize, Checkpoint)>,
    /// (row id, what, index into `checkpoints`), sorted.
    expect: Vec<(i64, Expect, usize)>,
    cursor: usize,
    seen: i64,
    last_id: i64,
}

/// What the checkpoints anchored, for the report of an intact trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorSummary {
    /// Number of checkpoints.
    pub checkpoints: usize,
    /// The checkpoint covering the most rows: its time, rows, newest id and signer.
    pub newest: Option<(String, i64, i64, String)>,
}

impl Anchors {
    /// Verify every checkpoint's signature against the trusted keys, then prepare to check
    /// rows. The first line that fails is returned with why.
    pub fn new(
        checkpoints: Vec<(usize, Checkpoint)>,
        trusted: &[PublicKey],
    ) -> Result<Self, LineError> {
        let mut expect = Vec::new();
        for (index, (line, cp)) in checkpoints.iter().enumerate() {
            cp.verify(trusted).map_err(|message| LineError {
                line: *line,
                message,
            })?;
            let chunks = cp.marks.as_bytes().chunks(MARK_LEN);
            for (offset, chunk) in (0i64..).zip(chunks) {
                let value = std::str::from_utf8(chunk)
                    .ok()
                    .and_then(|t| u32::from_str_radix(t, 16).ok())
                    .ok_or_else(|| LineError {
                        line: *line,
                        message: "marks must be hex digits".into(),
                    })?;
                expect.push((cp.marks_from + offset, Expect::Mark(value), index));
            }
            if cp.newest_id > 0 {
                expect.push((cp.newest_id, Expect::Head, index));
            }
        }
        expect.sort();
        Ok(Self {
            checkpoints,
            expect,
            cursor: 0,
            seen: 0,
            last_id: 0,
        })
    }

    fn describe(&self, index: usize) -> String {
        self.checkpoints
            .get(index)
            .map(|(line, cp)| cp.describe(*line))
            .unwrap_or_default()
    }

    /// Check the next row of the chain (rows must come in id order, each already verified
    /// against its predecessor). Returns the first contradiction with a checkpoint.
    pub fn observe(&mut self, id: i64, hash: &str) -> Option<Finding> {
        self.seen += 1;
        self.last_id = id;
        while let Some((want_id, what, index)) = self.expect.get(self.cursor) {
            let (want_id, index) = (*want_id, *index);
            if want_id > id {
                break;
            }
            if want_id < id {
                return Some(Finding::Missing {
                    id: want_id,
                    checkpoint: self.describe(index),
                });
            }
            match what {
                Expect::Mark(m) => {
                    let now = u32::from_str_radix(mark(hash), 16).ok();
                    if now != Some(*m) {
                        return Some(Finding::Changed {
                            id,
                            checkpoint: self.describe(index),
                            detail: format!(
                                "its hash now starts {}, the checkpoint recorded {m:08x}",
                                mark(hash)
                            ),
                        });
                    }
                }
                Expect::Head => {
                    let cp = &self.checkpoints.get(index)?.1;
                    if cp.head_hash != hash {
                        return Some(Finding::Changed {
                            id,
                            checkpoint: self.describe(index),
                            detail: format!(
                                "its hash is {hash}, the checkpoint signed {}",
                                cp.head_hash
                            ),
                        });
                    }
                    if cp.rows != self.seen {
                        return Some(Finding::Count {
                            id,
                            checkpoint: self.describe(index),
                            found: self.seen,
                        });
                    }
                }
            }
            self.cursor += 1;
        }
        None
    }

    /// After the last row: any row a checkpoint covers that never came is missing (the
    /// first one after the last row seen, under the checkpoint covering the most rows).
    pub fn finish(&self) -> Option<Finding> {
        let remaining = self.expect.get(self.cursor..).unwrap_or_default();
        let widest = remaining
            .iter()
            .filter_map(|(_, _, i)| self.checkpoints.get(*i).map(|(_, cp)| (cp.newest_id, *i)))
            .max()?;
        Some(Finding::Missing {
            id: self.last_id + 1,
            checkpoint: self.describe(widest.1),
        })
    }

    /// What these checkpoints anchor.
    pub fn summary(&self) -> AnchorSummary {
        let newest = self
            .checkpoints
            .iter()
            .max_by_key(|(line, cp)| (cp.newest_id, *line))
            .map(|(_, cp)| {
                let signer = cp
                    .signer()
                    .map(|k| k.fingerprint())
                    .unwrap_or_else(|_| cp.key.clone());
                (cp.at.clone(), cp.rows, cp.newest_id, signer)
            });
        AnchorSummary {
            checkpoints: self.checkpoints.len(),
            newest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> AuditKey {
        AuditKey::from_seed(&[n; 32])
    }

    /// A fake chain: row i's hash starts with a mark that differs for every row.
    fn hash(i: i64) -> String {
        format!("{:08x}{i:056x}", i * 2_654_435 + 17)
    }

    fn head(n: i64) -> ChainHead {
        ChainHead {
            rows: n,
            newest_id: n,
            head_hash: if n == 0 { "0".repeat(64) } else { hash(n) },
        }
    }

    fn marks(from: i64, to: i64) -> String {
        (from..=to).map(|i| mark(&hash(i)).to_string()).collect()
    }

    fn checkpoint(k: &AuditKey, from: i64, to: i64) -> Checkpoint {
        Checkpoint::sign(
            k,
            &head(to),
            from,
            marks(from, to),
            "2026-11-20T10:00:00.000Z".into(),
        )
    }

    fn anchors(cps: &[Checkpoint], trusted: &[PublicKey]) -> Result<Anchors, LineError> {
        Anchors::new(
            cps.iter()
                .cloned()
                .enumerate()
                .map(|(i, c)| (i + 1, c))
                .collect(),
            trusted,
        )
    }

    fn walk(a: &mut Anchors, hashes: &[(i64, String)]) -> Option<Finding> {
        for (id, h) in hashes {
            if let Some(f) = a.observe(*id, h) {
                return Some(f);
            }
        }
        a.finish()
    }

    fn rows(to: i64) -> Vec<(i64, String)> {
        (1..=to).map(|i| (i, hash(i))).collect()
    }

    #[test]
    fn line_round_trips_and_verifies() {
        let k = key(1);
        let cp = checkpoint(&k, 1, 5);
        let line = cp.to_line();
        assert!(!line.contains('\n'));
        let parsed = Checkpoint::parse_line(&line).expect("parse");
        assert_eq!(parsed, cp);
        assert_eq!(parsed.verify(&[k.public()]), Ok(()));
    }

    #[test]
    fn altered_or_foreign_lines_are_refused() {
        let k = key(1);
        let other = key(2);
        let mut cp = checkpoint(&k, 1, 5);
        cp.rows = 4;
        let err = cp.verify(&[k.public()]).unwrap_err();
        assert!(err.contains("forged or altered"), "{err}");
        let foreign = checkpoint(&other, 1, 5);
        let err = foreign.verify(&[k.public()]).unwrap_err();
        assert!(err.contains("not a trusted key"), "{err}");
        assert!(err.contains(&other.public().fingerprint()), "{err}");
        // Replacing the key in the line with the trusted one does not make it verify.
        let mut swapped = checkpoint(&other, 1, 5);
        swapped.key = k.public().to_string();
        assert!(
            swapped
                .verify(&[k.public()])
                .unwrap_err()
                .contains("forged")
        );
        assert_eq!(foreign.verify(&[k.public(), other.public()]), Ok(()));
    }

    #[test]
    fn bad_lines_are_named() {
        let good = checkpoint(&key(1), 1, 3).to_line();
        let text = format!("{good}\n\n{{\"v\":1}}\n");
        let err = parse_file(&text).unwrap_err();
        assert_eq!(err.line, 3);
        let mut short = Checkpoint::parse_line(&good).expect("parse");
        short.marks.pop();
        let err = Checkpoint::parse_line(&short.to_line()).unwrap_err();
        assert!(err.contains("marks"), "{err}");
        let mut other = Checkpoint::parse_line(&good).expect("parse");
        other.v = 9;
        assert!(Checkpoint::parse_line(&other.to_line()).is_err());
        let extra = good.replacen('{', "{\"extra\":1,", 1);
        assert!(Checkpoint::parse_line(&extra).is_err());
        assert_eq!(
            parse_file(&format!("{good}\n{good}\n")).map(|v| v.len()),
            Ok(2)
        );
    }

    #[test]
    fn anchors_reject_an_untrusted_line_by_number() {
        let cps = [checkpoint(&key(1), 1, 3), checkpoint(&key(2), 4, 6)];
        let err = anchors(&cps, &[key(1).public()]).unwrap_err();
        assert_eq!(err.line, 2);
    }

    #[test]
    fn untouched_chain_passes() {
        let k = key(1);
        let cps = [checkpoint(&k, 1, 3), checkpoint(&k, 4, 6)];
        let mut a = anchors(&cps, &[k.public()]).expect("anchors");
        assert_eq!(walk(&mut a, &rows(9)), None);
        let summary = a.summary();
        assert_eq!(summary.checkpoints, 2);
        assert_eq!(summary.newest.map(|n| n.2), Some(6));
    }

    #[test]
    fn deleting_the_newest_rows_names_the_first_missing() {
        let k = key(1);
        let cps = [checkpoint(&k, 1, 4), checkpoint(&k, 5, 10)];
        let mut a = anchors(&cps, &[k.public()]).expect("anchors");
        let f = walk(&mut a, &rows(6)).expect("finding");
        assert_eq!(f.row(), 7);
        let text = f.to_string();
        assert!(text.starts_with("row 7 is missing"), "{text}");
        assert!(text.contains("signed 10 rows ending at 10"), "{text}");
    }

    #[test]
    fn deleting_every_row_names_row_one() {
        let k = key(1);
        let mut a = anchors(&[checkpoint(&k, 1, 5)], &[k.public()]).expect("anchors");
        let f = walk(&mut a, &[]).expect("finding");
        assert_eq!(f.row(), 1);
    }

    #[test]
    fn an_empty_checkpoint_expects_nothing() {
        let k = key(1);
        let mut a = anchors(&[checkpoint(&k, 1, 0)], &[k.public()]).expect("anchors");
        assert_eq!(walk(&mut a, &[]), None);
    }

    #[test]
    fn a_recomputed_chain_names_the_first_changed_row() {
        let k = key(1);
        let mut a = anchors(&[checkpoint(&k, 1, 8)], &[k.public()]).expect("anchors");
        let mut chain = rows(10);
        for (id, h) in chain.iter_mut().skip(3) {
            *h = format!("{:08x}{id:056x}", *id + 0xabcdef);
        }
        let f = walk(&mut a, &chain).expect("finding");
        assert_eq!(f.row(), 4);
        assert!(f.to_string().contains("row 4 changed"), "{f}");
    }

    #[test]
    fn a_head_change_that_keeps_the_marks_is_still_caught() {
        let k = key(1);
        let mut a = anchors(&[checkpoint(&k, 1, 3)], &[k.public()]).expect("anchors");
        let mut chain = rows(3);
        chain[2].1 = format!("{}{}", mark(&hash(3)), "f".repeat(56));
        let f = walk(&mut a, &chain).expect("finding");
        assert_eq!(f.row(), 3);
        assert!(f.to_string().contains("the checkpoint signed"), "{f}");
    }

    #[test]
    fn a_gap_below_a_checkpoint_is_missing() {
        let k = key(1);
        let mut a = anchors(&[checkpoint(&k, 1, 5)], &[k.public()]).expect("anchors");
        let chain: Vec<_> = rows(5).into_iter().filter(|(id, _)| *id != 2).collect();
        let f = walk(&mut a, &chain).expect("finding");
        assert!(matches!(f, Finding::Missing { id: 2, .. }), "{f}");
    }

    #[test]
    fn a_wrong_count_is_reported() {
        let k = key(1);
        let mut h = head(3);
        h.rows = 4;
        let cp = Checkpoint::sign(&k, &h, 1, marks(1, 3), "t".into());
        let mut a = anchors(&[cp], &[k.public()]).expect("anchors");
        let f = walk(&mut a, &rows(3)).expect("finding");
        assert!(
            matches!(
                f,
                Finding::Count {
                    id: 3,
                    found: 3,
                    ..
                }
            ),
            "{f}"
        );
    }
}
