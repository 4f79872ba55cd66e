//! A directory of CSV files that rotate by record time and by size. The file being written is
//! `NAME.csv.part` (`NAME.csv.zst.part` compressed); it is renamed to `NAME.csv` (`NAME.csv.zst`)
//! once complete, so a collector scanning the directory only ever sees finished files. Existing
//! files are never overwritten.

use super::{Compression, WriterConfig};
use crate::time::Timestamp;
use anyhow::{Context, Result};
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// zstd level for rotated files: the library's default, a good speed/ratio balance for CSV.
const ZSTD_LEVEL: i32 = 3;
/// Bytes of whole rows gathered in memory before they go to the file in one write.
const FLUSH_AT: usize = 256 * 1024;
/// Bytes written between two syncs, after each of which the file's pages leave the page cache.
/// Records are on disk within this many bytes, and the writer reuses the same few MiB of page
/// cache instead of filling fresh pages with CSV nobody reads back: on this project's VM a fresh
/// page costs a host fault, and writing the 1 GB benchmark's 105 MB of CSV into new pages took
/// 0.6-1.0 s of kernel time against ~0.04 s this way (README, design decisions). 4 and 16 MiB
/// measured the same.
const SYNC_EVERY: u64 = 8 << 20;

/// A file that only ever holds whole rows: bytes are gathered in memory and written at row
/// boundaries; a write that fails (disk full) is cut back to the last whole row and its bytes stay
/// in memory, so [`RowFile::flush_rows`] can simply be tried again once space returns.
struct RowFile {
    file: File,
    buf: Vec<u8>,
    /// Bytes known to be in the file.
    on_disk: u64,
    /// Bytes synced and dropped from the page cache (or being so, by `syncing`).
    synced: u64,
    /// The sync in flight, one at a time, on a thread of its own: `fdatasync` waits for the disk
    /// (4-6 ms per 8 MiB here), and while the writer waited, the trackers' rows filled its queue
    /// and the trackers stopped (1 GB all-SIP file, files written: 0.650 -> 0.620 s, the same
    /// CPU, 8 alternating runs). Its result is taken at the next sync or at close.
    syncing: Option<std::thread::JoinHandle<io::Result<()>>>,
}

impl RowFile {
    fn flush_rows(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.file.write_all(&self.buf) {
            // Part of the buffer may have reached the file: cut it back to whole rows.
            self.file.set_len(self.on_disk)?;
            self.file.seek(SeekFrom::Start(self.on_disk))?;
            return Err(e);
        }
        self.on_disk += self.buf.len() as u64;
        self.buf.clear();
        if self.on_disk - self.synced >= SYNC_EVERY {
            self.sync()?;
        }
        Ok(())
    }

    /// Starts syncing what was written, after which the kernel may drop those pages from its
    /// cache, once the sync before has ended. (A sync error is a write error, as at close: the
    /// kernel reports it once, to this file's description, which the sync thread's handle
    /// shares.)
    fn sync(&mut self) -> io::Result<()> {
        self.wait_sync()?;
        let file = self.file.try_clone()?;
        self.synced = self.on_disk;
        match std::thread::Builder::new()
            .name("sync".into())
            .spawn(move || sync_and_forget(&file))
        {
            Ok(handle) => self.syncing = Some(handle),
            // No thread to be had: sync here.
            Err(_) => sync_and_forget(&self.file)?,
        }
        Ok(())
    }

    /// Waits for the sync in flight, if any, and gives its result.
    fn wait_sync(&mut self) -> io::Result<()> {
        match self.syncing.take() {
            None => Ok(()),
            Some(h) => h
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the sync thread failed"))),
        }
    }
}

/// Syncs the file's data, then lets the kernel drop its pages ([`forget_cached`]).
fn sync_and_forget(file: &File) -> io::Result<()> {
    file.sync_data()?;
    forget_cached(file);
    Ok(())
}

/// Tells the kernel the file's synced pages will not be read again (a hint: clean pages are
/// dropped, and where the file system keeps none, as tmpfs, nothing happens; so its error, which
/// changes nothing written, is ignored).
fn forget_cached(file: &File) {
    use nix::fcntl::{PosixFadviseAdvice, posix_fadvise};
    let _ = posix_fadvise(file, 0, 0, PosixFadviseAdvice::POSIX_FADV_DONTNEED);
}

/// Appends to memory only (the zstd encoder writes through this); never fails.
impl Write for RowFile {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An open output file, plain or compressed.
enum Sink {
    Plain(RowFile),
    Zstd(zstd::stream::write::Encoder<'static, RowFile>),
}

impl Sink {
    fn append(&mut self, b: &[u8]) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.write_all(b),
            Sink::Zstd(w) => w.write_all(b),
        }
    }

    fn rows(&mut self) -> &mut RowFile {
        match self {
            Sink::Plain(w) => w,
            Sink::Zstd(w) => w.get_mut(),
        }
    }

    /// Ends the zstd frame (in memory); afterwards the sink is plain bytes.
    fn finish(self) -> io::Result<RowFile> {
        match self {
            Sink::Plain(w) => Ok(w),
            Sink::Zstd(w) => w.finish(),
        }
    }
}

struct Current {
    file: Sink,
    part: PathBuf,
    done: PathBuf,
    bucket: Timestamp,
    bytes: u64,
    rows: u64,
    /// A close failed after the file was finished (a zstd frame ended): no row may join it, the
    /// next write closes it first.
    sealed: bool,
}

pub struct RotatingDir {
    dir: PathBuf,
    prefix: String,
    header: Vec<u8>,
    interval: Option<u64>,
    max_bytes: Option<u64>,
    compress: Option<Compression>,
    current: Option<Current>,
    /// After a file was closed because the wall clock passed its interval: the next interval's
    /// start, where a late row for the closed interval goes (not into a new file of its own).
    floor: Option<Timestamp>,
    /// Finished files, in the order they were closed.
    pub closed: Vec<PathBuf>,
}

impl RotatingDir {
    pub fn new(dir: &Path, cfg: &WriterConfig, header: Vec<u8>) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create output directory {}", dir.display()))?;
        Ok(RotatingDir {
            dir: dir.to_owned(),
            prefix: cfg.prefix.clone(),
            header,
            interval: cfg.rotate_interval,
            max_bytes: cfg.rotate_size,
            compress: cfg.compress,
            current: None,
            floor: None,
            closed: Vec::new(),
        })
    }

    /// Appends one CSV line that belongs to `time`, rolling to a new file first when the line
    /// falls in a later interval or would pass the size limit.
    pub fn write(&mut self, time: Timestamp, line: &[u8]) -> Result<()> {
        let bucket = match self.interval {
            Some(i) => time.floor_to(i),
            None => time.floor_to(1),
        };
        let roll = match &self.current {
            None => true,
            Some(c) => {
                c.sealed
                    || (self.interval.is_some() && bucket > c.bucket)
                    || self
                        .max_bytes
                        .is_some_and(|m| c.rows > 0 && c.bytes + line.len() as u64 > m)
            }
        };
        if roll {
            // A late row (earlier interval) goes into the current interval's next file.
            let prev = self
                .current
                .as_ref()
                .map(|c| c.bucket)
                .or(self.floor.take());
            self.close()?;
            self.open(prev.map_or(bucket, |b| b.max(bucket)))?;
        }
        let Some(c) = self.current.as_mut() else {
            return Ok(());
        };
        // Flushed before the row is taken, so an error means the row was not taken.
        if c.file.rows().buf.len() >= FLUSH_AT {
            c.file
                .rows()
                .flush_rows()
                .with_context(|| format!("cannot write {}", c.part.display()))?;
        }
        c.file
            .append(line)
            .with_context(|| format!("cannot write {}", c.part.display()))?;
        c.bytes += line.len() as u64;
        c.rows += 1;
        Ok(())
    }

    fn open(&mut self, bucket: Timestamp) -> Result<()> {
        let stamp = bucket.file_stamp();
        let (part, done) = (1u32..)
            .map(|n| {
                let name = if n == 1 {
                    format!("{}{stamp}", self.prefix)
                } else {
                    format!("{}{stamp}-{n}", self.prefix)
                };
                let ext = match self.compress {
                    None => "csv",
                    Some(Compression::Zstd) => "csv.zst",
                };
                (
                    self.dir.join(format!("{name}.{ext}.part")),
                    self.dir.join(format!("{name}.{ext}")),
                )
            })
            .find(|(p, d)| !p.exists() && !d.exists())
            .context("no free file name")?;
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&part)
            .with_context(|| format!("cannot create {}", part.display()))?;
        let buffered = RowFile {
            file: f,
            buf: Vec::with_capacity(FLUSH_AT),
            on_disk: 0,
            synced: 0,
            syncing: None,
        };
        let mut file = match self.compress {
            None => Sink::Plain(buffered),
            Some(Compression::Zstd) => Sink::Zstd(
                zstd::stream::write::Encoder::new(buffered, ZSTD_LEVEL)
                    .with_context(|| format!("cannot start zstd for {}", part.display()))?,
            ),
        };
        file.append(&self.header)
            .with_context(|| format!("cannot write {}", part.display()))?;
        self.current = Some(Current {
            file,
            part,
            done,
            bucket,
            bytes: self.header.len() as u64,
            rows: 0,
            sealed: false,
        });
        Ok(())
    }

    /// Closes the current file once `now` is past the end of its interval.
    pub fn close_if_past(&mut self, now: Timestamp) -> Result<()> {
        let (Some(c), Some(i)) = (&self.current, self.interval) else {
            return Ok(());
        };
        let end = c.bucket.plus_secs(u32::try_from(i).unwrap_or(u32::MAX));
        if now < end {
            return Ok(());
        }
        self.floor = Some(end);
        self.close()
    }

    /// Flushes, syncs and renames the current file, if any. When that fails (disk full), the file
    /// stays current, complete in memory, and a later `close` (or `write`) tries again.
    pub fn close(&mut self) -> Result<()> {
        let Some(c) = self.current.take() else {
            return Ok(());
        };
        let mut rows = match c.file.finish() {
            Ok(rows) => rows,
            Err(e) => {
                return Err(e).with_context(|| format!("cannot write {}", c.part.display()));
            }
        };
        let done = rows
            .flush_rows()
            .and_then(|()| rows.wait_sync())
            .and_then(|()| rows.file.sync_all())
            .map(|()| forget_cached(&rows.file))
            .with_context(|| format!("cannot write {}", c.part.display()));
        if let Err(e) = done {
            self.current = Some(Current {
                file: Sink::Plain(rows),
                sealed: true,
                ..c
            });
            return Err(e);
        }
        std::fs::rename(&c.part, &c.done).with_context(|| {
            format!("cannot rename {} to {}", c.part.display(), c.done.display())
        })?;
        self.closed.push(c.done);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::Output;

    /// Live rotation: the file of an interval is closed when the wall clock passes its end; a row
    /// for that interval arriving later joins the next interval's file instead of opening one of
    /// its own, so there is one file per interval.
    #[test]
    fn a_late_row_after_a_wall_clock_close_joins_the_next_file() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = WriterConfig {
            output: Output::Dir(dir.path().into()),
            rotate_interval: Some(60),
            rotate_size: None,
            prefix: "cdr-".into(),
            compress: None,
            wall_clock: true,
        };
        let mut d = RotatingDir::new(dir.path(), &cfg, b"h\n".to_vec()).unwrap();
        let t = Timestamp::from_secs;
        d.write(t(10), b"a\n").unwrap();
        d.close_if_past(t(59)).unwrap();
        assert!(d.closed.is_empty(), "not yet");
        d.close_if_past(t(61)).unwrap();
        assert_eq!(d.closed.len(), 1);
        d.write(t(59), b"late\n").unwrap();
        d.write(t(70), b"b\n").unwrap();
        d.close().unwrap();
        let names: Vec<String> = d
            .closed
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["cdr-19700101T000000Z.csv", "cdr-19700101T000100Z.csv"]
        );
        let second = std::fs::read_to_string(&d.closed[1]).unwrap();
        assert_eq!(second, "h\nlate\nb\n");
    }

    /// A directory of one file (no rotation) with the header `h`.
    fn one_file(dir: &Path) -> RotatingDir {
        let cfg = WriterConfig {
            output: Output::Dir(dir.into()),
            rotate_interval: None,
            rotate_size: None,
            prefix: "cdr-".into(),
            compress: None,
            wall_clock: false,
        };
        RotatingDir::new(dir, &cfg, b"h\n".to_vec()).unwrap()
    }

    /// A sync that failed in the background fails the close that waits for it: the file stays
    /// current and unrenamed, its rows kept, and the next close (nothing in flight) finishes it.
    #[test]
    fn a_failed_background_sync_fails_the_close_and_is_retried() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = one_file(dir.path());
        d.write(Timestamp::from_secs(1), b"a\n").unwrap();
        let failed = std::thread::spawn(|| Err(io::Error::other("EIO, say")));
        d.current.as_mut().unwrap().file.rows().syncing = Some(failed);
        let e = d.close().unwrap_err();
        assert!(format!("{e:#}").contains("EIO, say"), "{e:#}");
        assert!(d.closed.is_empty());
        assert!(d.current.as_ref().is_some_and(|c| c.part.exists()));
        d.close().unwrap();
        assert_eq!(std::fs::read(&d.closed[0]).unwrap(), b"h\na\n");
    }

    /// Bytes of `path` in the page cache, from util-linux's `fincore`; None when it cannot tell.
    fn cached(path: &Path) -> Option<u64> {
        let out = std::process::Command::new("fincore")
            .args(["--bytes", "--noheadings", "--output", "RES"])
            .arg(path)
            .output()
            .ok()?;
        String::from_utf8(out.stdout).ok()?.trim().parse().ok()
    }

    /// A long file does not fill the page cache: every SYNC_EVERY bytes what was written is
    /// synced and its pages dropped, so at most about twice that much is cached while rows go on
    /// (the bytes of the sync in flight, and those written since), none after the close, and
    /// every row is in the file.
    #[test]
    fn written_rows_leave_the_page_cache() {
        // On the repository's file system (a temporary directory may be tmpfs, which caches
        // everything by design).
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
        let dir = tempfile::tempdir_in(&base).unwrap();
        let probe = dir.path().join("probe");
        std::fs::write(&probe, vec![b'x'; 1 << 20]).unwrap();
        let f = File::open(&probe).unwrap();
        f.sync_all().unwrap();
        forget_cached(&f);
        match cached(&probe) {
            Some(0) => {}
            other => {
                eprintln!(
                    "SKIPPED written_rows_leave_the_page_cache: fincore reports {other:?} cached \
                     bytes of a synced, dropped file in {} (no fincore, or a file system that \
                     keeps its pages)",
                    base.display()
                );
                return;
            }
        }
        let mut d = one_file(dir.path());
        let row = [b'r'; 99]
            .iter()
            .copied()
            .chain([b'\n'])
            .collect::<Vec<u8>>();
        let rows = 3 * SYNC_EVERY as usize / row.len();
        for _ in 0..rows {
            d.write(Timestamp::from_secs(1), &row).unwrap();
        }
        let part = d.current.as_ref().map(|c| c.part.clone()).unwrap();
        let held = cached(&part).unwrap();
        assert!(
            held <= 2 * SYNC_EVERY + FLUSH_AT as u64,
            "{held} bytes cached after {} written",
            rows * row.len()
        );
        d.close().unwrap();
        assert_eq!(cached(&d.closed[0]), Some(0));
        let text = std::fs::read(&d.closed[0]).unwrap();
        assert_eq!(text.len(), 2 + rows * row.len());
        assert!(text[2..].chunks(row.len()).all(|r| r == row.as_slice()));
    }
}
