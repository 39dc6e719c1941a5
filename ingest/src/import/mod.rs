//! Importing gradient dumps written by other tools into a lake.
//!
//! A dump is one file per (step, kind, sample) holding one tensor per param, named
//! as in the model: a `.npy` file (one tensor, named by the file's stem, so
//! `fc1.weight.npy` is `fc1.weight`), an `.npz` archive (one array per param, stored
//! or deflated) or a `.safetensors` file. [`import`] reads every file's header first —
//! the params, their shapes and element types — so a wrong shape, an unsupported
//! dtype or a tensor given twice is reported before anything is written, naming the
//! file and the tensor. Then it writes the tensors one at a time, in step order,
//! through a [`LakeWriter`]: memory holds one tensor plus the writer's bounded queue,
//! whatever the size of the dump.

mod manifest;
mod npy;
mod safetensors_file;

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

pub use manifest::read_manifest;

use crate::error::{IngestError, Result};
use crate::meta::{ParamSpec, RunInfo};
use crate::schema::Kind;
use crate::writer::{GradKey, LakeWriter, WriteStats, WriterOptions};
use safetensors_file::SafetensorsFile;

/// One dump file and the gradient it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportEntry {
    /// The `.npy`, `.npz` or `.safetensors` file.
    pub file: PathBuf,
    /// Optimizer step.
    pub step: i64,
    /// Gradient kind.
    pub kind: Kind,
    /// Example or draw index (0 for minibatch and full gradients).
    pub sample: i64,
}

/// How [`import`] writes the run.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The run id.
    pub run: String,
    /// The model's name, stored in the run's metadata.
    pub model: String,
    /// Writer settings (queue and file sizes).
    pub writer: WriterOptions,
}

/// What [`import`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportSummary {
    /// The params found, in order of first appearance.
    pub params: Vec<ParamSpec>,
    /// What the writer wrote.
    pub stats: WriteStats,
}

/// A tensor read from a dump file.
struct Found {
    name: String,
    shape: Vec<usize>,
    dtype: String,
    /// Whether its element type is one gradlake reads (floating point).
    readable: bool,
}

/// An open dump file.
enum Dump {
    Npy(PathBuf),
    /// Its central directory is read once, when opened.
    Npz(zip::ZipArchive<BufReader<File>>),
    Safetensors(SafetensorsFile),
}

impl Dump {
    fn open(path: &Path) -> std::result::Result<Self, String> {
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("npy") => Ok(Self::Npy(path.to_path_buf())),
            Some("npz") => zip_archive(path).map(Self::Npz),
            Some("safetensors") => SafetensorsFile::open(path).map(Self::Safetensors),
            _ => Err("unknown dump format: expected a .npy, .npz or .safetensors file".into()),
        }
    }

    fn list(&mut self) -> std::result::Result<Vec<Found>, String> {
        match self {
            Self::Npy(path) => {
                let name = path.file_stem().and_then(|s| s.to_str()).ok_or("file name is not UTF-8")?;
                let (info, _) = npy::open(BufReader::new(File::open(&*path).map_err(|e| e.to_string())?))?;
                let readable = info.readable;
                Ok(vec![Found { name: name.to_string(), shape: info.shape, dtype: info.dtype, readable }])
            }
            Self::Npz(archive) => {
                let mut out = Vec::with_capacity(archive.len());
                for i in 0..archive.len() {
                    let entry = archive.by_index(i).map_err(|e| e.to_string())?;
                    let entry_name = entry.name().map_err(|e| format!("entry {i}: {e}"))?;
                    let Some(name) = entry_name.strip_suffix(".npy").map(str::to_string) else { continue };
                    let (info, _) = npy::open(entry).map_err(|e| format!("array {name:?}: {e}"))?;
                    out.push(Found { name, shape: info.shape, dtype: info.dtype, readable: info.readable });
                }
                Ok(out)
            }
            Self::Safetensors(file) => Ok(file
                .list()
                .into_iter()
                .map(|(name, shape, dtype, readable)| Found { name, shape, dtype, readable })
                .collect()),
        }
    }

    fn read(&mut self, name: &str) -> std::result::Result<Vec<f32>, String> {
        match self {
            Self::Npy(path) => {
                npy::read_f32(npy::open(BufReader::new(File::open(&*path).map_err(|e| e.to_string())?))?.1)
            }
            Self::Npz(archive) => {
                let entry = archive.by_name(&format!("{name}.npy")).map_err(|e| e.to_string())?;
                npy::read_f32(npy::open(entry)?.1)
            }
            Self::Safetensors(file) => file.read_f32(name),
        }
    }
}

fn zip_archive(path: &Path) -> std::result::Result<zip::ZipArchive<BufReader<File>>, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    zip::ZipArchive::new(BufReader::new(file)).map_err(|e| format!("not an .npz (zip) archive: {e}"))
}

fn import_error(file: &Path, tensor: Option<&str>, message: impl Into<String>) -> IngestError {
    let what = tensor.map_or_else(String::new, |t| format!(", tensor {t:?}"));
    IngestError::InvalidArgument(format!("{}{what}: {}", file.display(), message.into()))
}

/// Writes the gradients of `entries` as run `options.run` of `lake` (a new run).
/// `progress(done, total)` is called after each file.
pub fn import(
    lake: &Path,
    entries: &[ImportEntry],
    options: &ImportOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<ImportSummary> {
    if entries.is_empty() {
        return Err(IngestError::InvalidArgument("nothing to import: give dump files or a manifest".into()));
    }
    // Every header first: params, shapes and dtypes, before the run exists.
    let mut params: Vec<ParamSpec> = Vec::new();
    let mut seen_in: HashMap<String, PathBuf> = HashMap::new();
    let mut given: HashMap<(i64, Kind, i64, String), PathBuf> = HashMap::new();
    let mut order: Vec<usize> = (0..entries.len()).collect();
    // The writer takes each kind's steps in order; equal steps keep the manifest's order.
    order.sort_by_key(|&i| entries[i].step);
    let mut planned = Vec::with_capacity(entries.len());
    for &i in &order {
        let e = &entries[i];
        if e.step < 0 || e.sample < 0 {
            return Err(import_error(&e.file, None, format!("step {} and sample {} must be >= 0", e.step, e.sample)));
        }
        let mut dump = Dump::open(&e.file).map_err(|m| import_error(&e.file, None, m))?;
        let found = dump.list().map_err(|m| import_error(&e.file, None, m))?;
        if found.is_empty() {
            return Err(import_error(&e.file, None, "holds no arrays"));
        }
        for t in &found {
            if !t.readable {
                return Err(import_error(
                    &e.file,
                    Some(&t.name),
                    format!("dtype {} is not supported (gradients are read from 16-, 32- or 64-bit floats)", t.dtype),
                ));
            }
            match params.iter().find(|p| p.name == t.name) {
                Some(p) if p.shape != t.shape => {
                    return Err(import_error(
                        &e.file,
                        Some(&t.name),
                        format!("shape {:?}, but {} gave it shape {:?}", t.shape, seen_in[&t.name].display(), p.shape),
                    ));
                }
                Some(_) => {}
                None => {
                    params.push(ParamSpec::new(t.name.clone(), t.shape.clone()));
                    seen_in.insert(t.name.clone(), e.file.clone());
                }
            }
            let key = (e.step, e.kind, e.sample, t.name.clone());
            if let Some(first) = given.insert(key, e.file.clone()) {
                return Err(import_error(
                    &e.file,
                    Some(&t.name),
                    format!("step {} {} sample {} was already given by {}", e.step, e.kind, e.sample, first.display()),
                ));
            }
        }
        planned.push((e, dump, found));
    }
    let info = RunInfo {
        run: options.run.clone(),
        model: options.model.clone(),
        dataset: String::new(),
        optimizer: String::new(),
        lr: 0.0,
        batch_size: 0,
        seed: 0,
        start_time_us: RunInfo::now_us(),
        config: serde_json::json!({
            "import": { "files": entries.iter().map(|e| e.file.display().to_string()).collect::<Vec<_>>() }
        }),
    };
    let mut writer = LakeWriter::create(lake, &info, params.clone(), options.writer.clone())?;
    let total = planned.len();
    for (done, (e, mut dump, found)) in planned.into_iter().enumerate() {
        for t in found {
            let values = dump.read(&t.name).map_err(|m| import_error(&e.file, Some(&t.name), m))?;
            let key = GradKey { step: e.step, kind: e.kind, sample: e.sample, param: &t.name };
            writer
                .write_grad_blocking(key, values)
                .map_err(|err| import_error(&e.file, Some(&t.name), err.to_string()))?;
        }
        progress(done + 1, total);
    }
    let stats = writer.finish()?;
    Ok(ImportSummary { params, stats })
}
