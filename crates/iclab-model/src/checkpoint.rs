//! Training checkpoints: one safetensors file per checkpoint, `run_dir/checkpoints/step_NNNNNNNN.safetensors`.
//!
//! # Format
//! - Model weights, f32, under the Hugging Face `GPT2Model` names of [`Gpt::tensors`]
//!   (`wpe.weight`, `h.0.ln_1.weight`, `h.0.attn.c_attn.weight`, ..., `ln_f.weight`) plus
//!   `read_in.weight` [E, d], `read_in.bias` [E], `read_out.weight` [1, E], `read_out.bias` [1].
//!   GPT-2 stores its linear layers as `Conv1D` ([in, out]), and `Gpt::tensors` gives the shapes in
//!   that convention, so the tensors drop into `GPT2Model` unchanged.
//! - Adam(W) moments `optim.m` and `optim.v`, each flat [num_params] in the order of the weights
//!   above (the order of `Gpt::params`).
//! - `__metadata__` (strings, keys sorted): `format` = `iclab-checkpoint-v2`, `step` (optimizer
//!   steps done), `config` (the run's TrainConfig as TOML), `config_hash` (of the trajectory
//!   fields, see [`TrainConfig::trajectory_hash`]), `curriculum_d`, `curriculum_n` (the curriculum
//!   position of the next step), `checksum` (16 hex digits: FNV-1a over every byte of the file, the
//!   length prefix, the header with its metadata and the tensor data, with the checksum's own
//!   digits read as `0`; so a flipped bit anywhere is caught, not only truncation).
//! - Layout: tensors sorted by name, stored in that order, header padded to 8 bytes (what the
//!   safetensors library writes), so equal states give byte-equal files. Files of the earlier
//!   format `iclab-checkpoint-v1` (checksum over the tensors only) are still read.
//!
//! There is no separate RNG state: every training batch is drawn from the stream keyed by
//! (seed, Purpose::Train, step * batch_size + row) (docs/study.md, "Prompts"; `iclab_core::rng`),
//! so the step alone fixes the position of the data stream, and the curriculum is a function of
//! the step too.
//!
//! # Loading into PyTorch
//! ```python
//! from safetensors.torch import load_file
//! from transformers import GPT2Config, GPT2Model
//! import torch
//! sd = load_file("runs/tiny/checkpoints/step_00010000.safetensors")
//! # config values: see runs/tiny/config.toml ([model] d, n_points, n_layer, n_head, n_embd)
//! cfg = GPT2Config(n_positions=2 * n_points, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
//!                  resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, activation_function="gelu_new")
//! gpt = GPT2Model(cfg)
//! body = {k: v for k, v in sd.items() if not k.startswith(("read_in.", "read_out.", "optim."))}
//! missing, unexpected = gpt.load_state_dict(body, strict=False)  # missing: wte.weight only (unused)
//! read_in = torch.nn.Linear(d, n_embd); read_in.weight.data = sd["read_in.weight"]; read_in.bias.data = sd["read_in.bias"]
//! read_out = torch.nn.Linear(n_embd, 1); read_out.weight.data = sd["read_out.weight"]; read_out.bias.data = sd["read_out.bias"]
//! # tokens: [b, 2n, d] interleaving x_i and [y_i, 0, ..., 0]; prediction for y_i at token 2i:
//! pred = read_out(gpt(inputs_embeds=read_in(tokens)).last_hidden_state)[:, ::2, 0]
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::config::{config_differences, TrainConfig};
use crate::gpt::{Gpt, ModelConfig};
use crate::hash::fnv1a;

/// Tag of the format written here; a file without it is not an iclab checkpoint.
pub const FORMAT: &str = "iclab-checkpoint-v2";

/// Everything needed to continue training exactly where it stopped.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub config: TrainConfig,
    /// Optimizer steps done (the next batch is number `step`).
    pub step: u64,
    /// [num_params], the layout of `Gpt::params`.
    pub params: Vec<f32>,
    /// Adam first and second moments, [num_params] each.
    pub m: Vec<f32>,
    pub v: Vec<f32>,
}

fn to_bytes(v: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() * 4);
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

fn from_bytes(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect()
}

/// File name of the checkpoint after `step` steps.
pub fn file_name(step: u64) -> String {
    format!("step_{step:08}.safetensors")
}

/// A temporary file name for `name` unique to this process and call: `.<name>.<pid>.<random>.tmp`,
/// so that two writers (or a writer and the leftovers of a killed one) never share one.
pub fn temp_name(name: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded randomly per process and per instance: a random 64-bit suffix.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!(".{name}.{}.{:016x}.tmp", std::process::id(), h.finish())
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync, rename over
/// `path`, fsync of the directory (so that the rename itself survives a power cut). A reader sees
/// the old file or the new one, never a partial one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .context("atomic write needs a file name")?
        .to_string_lossy();
    let tmp = dir.join(temp_name(&name));
    {
        let mut f = fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(bytes)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.sync_all().with_context(|| format!("syncing {}", tmp.display()))?;
    }
    fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    // Directory fsync: best effort where the platform cannot open directories (Windows).
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The earlier format: its checksum covers the tensors only. Still read (the checksum code is the
/// same); written never.
pub const FORMAT_V1: &str = "iclab-checkpoint-v1";

/// The bytes of the `checksum` value while the checksum is computed (16 hex digits).
const CHECKSUM_PLACEHOLDER: &[u8; 16] = b"0000000000000000";
/// Where the checksum value starts in the header: right after this (exactly once in the file).
const CHECKSUM_KEY: &[u8] = b"\"checksum\":\"";

/// One tensor entry of a safetensors header.
#[derive(serde::Serialize)]
struct HeaderEntry<'a> {
    dtype: &'static str,
    shape: &'a [usize],
    data_offsets: [usize; 2],
}

/// The v2 checksum: FNV-1a over every byte of the file, the checksum's own 16 hex digits read as
/// `0`s. `value_at` is the offset of those digits; the header (8-byte length + JSON) and the data
/// are hashed separately so that only the small header is copied.
fn file_checksum(bytes: &[u8], header_end: usize, value_at: usize) -> u64 {
    let mut head = bytes[..header_end].to_vec();
    head[value_at..value_at + 16].copy_from_slice(CHECKSUM_PLACEHOLDER);
    let mut acc = Vec::with_capacity(16);
    acc.extend_from_slice(&fnv1a(&head).to_le_bytes());
    acc.extend_from_slice(&fnv1a(&bytes[header_end..]).to_le_bytes());
    fnv1a(&acc)
}

/// The offset of the checksum's 16 hex digits in `header` (the 8-byte length and the JSON), which
/// must hold the checksum key exactly once.
fn checksum_position(header: &[u8]) -> Result<usize> {
    let hits: Vec<usize> = header
        .windows(CHECKSUM_KEY.len())
        .enumerate()
        .filter(|(_, w)| *w == CHECKSUM_KEY)
        .map(|(i, _)| i + CHECKSUM_KEY.len())
        .collect();
    match hits[..] {
        [at] if at + 17 <= header.len() && header[at + 16] == b'"' => Ok(at),
        _ => bail!(
            "the header holds the checksum {} times, not once with 16 hex digits: the file is corrupt",
            hits.len()
        ),
    }
}

impl Checkpoint {
    /// Serialises to safetensors bytes (weights under GPT-2 names, moments, metadata). The layout
    /// is fixed: metadata keys sorted, tensors sorted by name and stored in that order (as the
    /// safetensors library lays them out), so equal states give byte-equal files.
    pub fn to_bytes(&self, gpt: &Gpt) -> Result<Vec<u8>> {
        let p = gpt.params.len();
        anyhow::ensure!(
            self.params.len() == p && self.m.len() == p && self.v.len() == p,
            "checkpoint buffers ({}, {}, {}) do not match the model's {p} parameters",
            self.params.len(),
            self.m.len(),
            self.v.len()
        );
        let params = to_bytes(&self.params);
        let m = to_bytes(&self.m);
        let v = to_bytes(&self.v);
        let mut tensors: Vec<(String, Vec<usize>, &[u8])> = Vec::new();
        for t in gpt.tensors() {
            let data = &params[t.offset * 4..(t.offset + t.len) * 4];
            tensors.push((t.name, t.shape, data));
        }
        tensors.push(("optim.m".into(), vec![p], &m));
        tensors.push(("optim.v".into(), vec![p], &v));
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        let (d, n) = self.config.curriculum.at(self.step);
        let mut meta = BTreeMap::new();
        meta.insert("format", FORMAT.to_string());
        meta.insert("step", self.step.to_string());
        meta.insert("config", toml::to_string(&self.config)?);
        meta.insert("config_hash", format!("{:016x}", self.config.trajectory_hash()));
        meta.insert("curriculum_d", d.to_string());
        meta.insert("curriculum_n", n.to_string());
        meta.insert(
            "checksum",
            String::from_utf8(CHECKSUM_PLACEHOLDER.to_vec()).expect("ascii"),
        );
        let mut json = String::from("{\"__metadata__\":");
        json.push_str(&serde_json::to_string(&meta)?);
        let mut offset = 0;
        for (name, shape, data) in &tensors {
            json.push(',');
            json.push_str(&serde_json::to_string(name)?);
            json.push(':');
            let entry = HeaderEntry {
                dtype: "F32",
                shape,
                data_offsets: [offset, offset + data.len()],
            };
            json.push_str(&serde_json::to_string(&entry)?);
            offset += data.len();
        }
        json.push('}');
        // The data starts 8-byte aligned, as the safetensors library writes it.
        while json.len() % 8 != 0 {
            json.push(' ');
        }
        let mut bytes = Vec::with_capacity(8 + json.len() + offset);
        bytes.extend_from_slice(&(json.len() as u64).to_le_bytes());
        bytes.extend_from_slice(json.as_bytes());
        let header_end = bytes.len();
        for (_, _, data) in &tensors {
            bytes.extend_from_slice(data);
        }
        let at = checksum_position(&bytes[..header_end])?;
        let sum = format!("{:016x}", file_checksum(&bytes, header_end, at));
        bytes[at..at + 16].copy_from_slice(sum.as_bytes());
        Ok(bytes)
    }

    /// Writes the checkpoint atomically to `path`.
    pub fn save(&self, gpt: &Gpt, path: &Path) -> Result<()> {
        write_atomic(path, &self.to_bytes(gpt)?)
    }

    /// Reads and verifies a checkpoint file: safetensors structure (truncation), format tag,
    /// checksum over every byte (corruption anywhere, metadata included), embedded config, every
    /// tensor's name and shape against the model that config describes. Errors name the file and
    /// say what is wrong with it.
    pub fn load(path: &Path) -> Result<Checkpoint> {
        let bytes = fs::read(path).with_context(|| format!("reading checkpoint {}", path.display()))?;
        Self::from_bytes(&bytes).with_context(|| format!("refusing checkpoint {}", path.display()))
    }

    /// As [`Checkpoint::load`], then checks that the checkpoint belongs to a run with `expected`'s
    /// trajectory (model sizes, task, seed, optimizer, ...), listing the fields that differ.
    pub fn load_for(path: &Path, expected: &TrainConfig) -> Result<Checkpoint> {
        let ck = Self::load(path)?;
        let diffs = config_differences(&ck.config, expected);
        if !diffs.is_empty() {
            bail!(
                "checkpoint {} was made with a different configuration: {} (checkpoint vs requested)",
                path.display(),
                diffs.join("; ")
            );
        }
        Ok(ck)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Checkpoint> {
        if bytes.is_empty() {
            bail!("the file is empty (0 bytes): not a checkpoint (a write that never happened or a full disk)");
        }
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| anyhow::anyhow!("not a readable safetensors file ({e}): the file is truncated or corrupt"))?;
        let (header_len, header) = SafeTensors::read_metadata(bytes)?;
        let meta = header.metadata().clone().unwrap_or_default();
        let get = |k: &str| -> Result<&String> {
            meta.get(k)
                .with_context(|| format!("metadata key `{k}` missing: not an iclab checkpoint ({FORMAT})"))
        };
        let format = get("format")?;
        let v1 = match format.as_str() {
            FORMAT => false,
            FORMAT_V1 => true,
            other => bail!("format `{other}`, expected `{FORMAT}` (or the older `{FORMAT_V1}`)"),
        };
        if !v1 {
            // Before anything else of the header is trusted: every byte of the file.
            let header_end = 8 + header_len;
            let at = checksum_position(&bytes[..header_end])?;
            let stored = String::from_utf8_lossy(&bytes[at..at + 16]).into_owned();
            let actual = format!("{:016x}", file_checksum(bytes, header_end, at));
            if stored != actual || get("checksum")? != &stored {
                bail!(
                    "checksum mismatch (stored {stored}, computed {actual}): the file is corrupt (a changed byte in \
                     its header, metadata or tensor data)"
                );
            }
        }
        let step: u64 = get("step")?.parse().context("metadata `step` is not an integer")?;
        let config: TrainConfig =
            toml::from_str(get("config")?).context("metadata `config` is not a valid TrainConfig")?;
        config
            .validate()
            .map_err(|e| anyhow::anyhow!("embedded config is invalid: {e}"))?;
        let model = config.model.clone();
        let p = model.num_params();
        // Zero buffer: only the tensor table is needed to check names and shapes.
        let gpt = Gpt::from_params(model.clone(), vec![0.0; p])
            .map_err(|e| anyhow::anyhow!("embedded model config is invalid: {e}"))?;
        let mut params = vec![0f32; p];
        let mut checksum_input: Vec<(String, &[u8])> = Vec::new();
        let expected_names: Vec<String> = gpt.tensors().iter().map(|t| t.name.clone()).collect();
        for t in gpt.tensors() {
            let view = st.tensor(&t.name).map_err(|_| {
                anyhow::anyhow!(
                    "tensor `{}` missing (model d {} n_points {} n_layer {} n_head {} n_embd {} needs it)",
                    t.name,
                    model.d,
                    model.n_points,
                    model.n_layer,
                    model.n_head,
                    model.n_embd
                )
            })?;
            check_view(&t.name, &view, &t.shape)?;
            params[t.offset..t.offset + t.len].copy_from_slice(&from_bytes(view.data()));
            checksum_input.push((t.name.clone(), view.data()));
        }
        let mut moments = Vec::new();
        for name in ["optim.m", "optim.v"] {
            let view = st
                .tensor(name)
                .map_err(|_| anyhow::anyhow!("optimizer state `{name}` missing"))?;
            check_view(name, &view, &[p])?;
            moments.push(from_bytes(view.data()));
            checksum_input.push((name.to_string(), view.data()));
        }
        for name in st.names() {
            if !expected_names.iter().any(|n| n == name) && !name.starts_with("optim.") {
                bail!("unexpected tensor `{name}`: not part of the model its config describes");
            }
        }
        if v1 {
            let stored = get("checksum")?;
            let actual = format!("{:016x}", checksum(checksum_input));
            if *stored != actual {
                bail!("checksum mismatch (stored {stored}, computed {actual}): the tensor data is corrupt");
            }
        }
        let v = moments.pop().expect("two moments");
        let m = moments.pop().expect("two moments");
        Ok(Checkpoint {
            config,
            step,
            params,
            m,
            v,
        })
    }
}

fn check_view(name: &str, view: &TensorView, shape: &[usize]) -> Result<()> {
    if view.dtype() != Dtype::F32 {
        bail!("tensor `{name}` has dtype {:?}, expected F32", view.dtype());
    }
    if view.shape() != shape {
        bail!(
            "tensor `{name}` has shape {:?}, the model needs {:?}",
            view.shape(),
            shape
        );
    }
    Ok(())
}

/// The v1 checksum: over (name, bytes) pairs in a fixed order (names sorted), independent of the
/// order safetensors lays tensors out in the file. It does not cover the metadata.
fn checksum(mut parts: Vec<(String, &[u8])>) -> u64 {
    parts.sort_by(|a, b| a.0.cmp(&b.0));
    let mut acc = Vec::with_capacity(parts.len() * 8);
    for (name, data) in parts {
        acc.extend_from_slice(&fnv1a(name.as_bytes()).to_le_bytes());
        acc.extend_from_slice(&fnv1a(data).to_le_bytes());
    }
    fnv1a(&acc)
}

/// The checkpoints of a run directory, (step, path), oldest first. Ignores temporary files.
pub fn list(run_dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let dir = run_dir.join("checkpoints");
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    for entry in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        let name = path
            .file_name()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        if let Some(step) = name
            .strip_prefix("step_")
            .and_then(|s| s.strip_suffix(".safetensors"))
            .and_then(|s| s.parse::<u64>().ok())
        {
            out.push((step, path));
        }
    }
    out.sort();
    Ok(out)
}

/// The latest checkpoint of a run directory, if any.
pub fn latest(run_dir: &Path) -> Result<Option<(u64, PathBuf)>> {
    Ok(list(run_dir)?.pop())
}

/// Deletes checkpoints except the latest and those whose step is a multiple of `keep_every`.
pub fn prune(run_dir: &Path, keep_every: u64) -> Result<()> {
    let all = list(run_dir)?;
    let Some(&(last, _)) = all.last() else { return Ok(()) };
    for (step, path) in all {
        let keep = step == last || (keep_every > 0 && step % keep_every == 0);
        if !keep {
            fs::remove_file(&path).with_context(|| format!("removing old checkpoint {}", path.display()))?;
        }
    }
    Ok(())
}

/// Checks that a model config matches a checkpoint's (used by `load` callers that bring a model).
pub fn check_model(saved: &ModelConfig, requested: &ModelConfig) -> Result<()> {
    let mut diffs = Vec::new();
    let pairs = [
        ("d", saved.d, requested.d),
        ("n_points", saved.n_points, requested.n_points),
        ("n_layer", saved.n_layer, requested.n_layer),
        ("n_head", saved.n_head, requested.n_head),
        ("n_embd", saved.n_embd, requested.n_embd),
    ];
    for (name, a, b) in pairs {
        if a != b {
            diffs.push(format!("model.{name}: {a} vs {b}"));
        }
    }
    if saved.tokens != requested.tokens {
        diffs.push(format!("model.tokens: {:?} vs {:?}", saved.tokens, requested.tokens));
    }
    if !diffs.is_empty() {
        bail!("model sizes differ (checkpoint vs requested): {}", diffs.join("; "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of the earlier format (checksum over the tensors only, written by the safetensors
    /// library) still loads; with a flipped tensor bit it is refused.
    #[test]
    fn v1_checkpoints_still_load() {
        let config = TrainConfig::default();
        let gpt = Gpt::new(config.model.clone(), 3);
        let p = gpt.params.len();
        let (params, m, v) = (to_bytes(&gpt.params), to_bytes(&vec![0.5; p]), to_bytes(&vec![0.25; p]));
        let mut views = Vec::new();
        let mut parts: Vec<(String, &[u8])> = Vec::new();
        for t in gpt.tensors() {
            let data = &params[t.offset * 4..(t.offset + t.len) * 4];
            views.push((
                t.name.clone(),
                TensorView::new(Dtype::F32, t.shape.clone(), data).unwrap(),
            ));
            parts.push((t.name, data));
        }
        views.push(("optim.m".into(), TensorView::new(Dtype::F32, vec![p], &m).unwrap()));
        views.push(("optim.v".into(), TensorView::new(Dtype::F32, vec![p], &v).unwrap()));
        parts.push(("optim.m".into(), &m));
        parts.push(("optim.v".into(), &v));
        let mut meta = std::collections::HashMap::new();
        meta.insert("format".to_string(), FORMAT_V1.to_string());
        meta.insert("step".to_string(), "7".to_string());
        meta.insert("config".to_string(), toml::to_string(&config).unwrap());
        meta.insert("checksum".to_string(), format!("{:016x}", checksum(parts)));
        let mut bytes = safetensors::serialize(views, Some(meta)).unwrap();
        let ck = Checkpoint::from_bytes(&bytes).unwrap();
        assert_eq!((ck.step, ck.params.len(), ck.m[0], ck.v[p - 1]), (7, p, 0.5, 0.25));
        assert!(ck
            .params
            .iter()
            .zip(&gpt.params)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
        let e = format!("{:#}", Checkpoint::from_bytes(&bytes).unwrap_err());
        assert!(e.contains("checksum mismatch"), "{e}");
    }
}
