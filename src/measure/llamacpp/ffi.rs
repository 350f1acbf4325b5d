//! The only code that calls llama.cpp: a thin, safe layer over `llama-cpp-sys-2` for what the
//! engine measurements need (write a GGUF file, quantise it, load it, decode batches of token
//! ids and time them). It runs inside the worker process (see `worker`), so an abort inside
//! ggml ends that process and not the tool.

use crate::arch::gguf::{Fill, GgufLayout, MetaValue};
use crate::arch::gguf_config::{f32_value, GgufContents};
use crate::dtype::TensorType;
use llama_cpp_sys_2 as sys;
use std::ffi::{CStr, CString};
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, Once};

static INIT: Once = Once::new();
/// llama.cpp's error-level log lines since the last `take_errors` (its failures explain
/// themselves only there).
static ERRORS: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// llama.cpp's report of each cache it allocates (`llama_kv_cache: size = ...`,
/// `llama_memory_recurrent: size = ...`), since the last `take_cache_reports`.
static CACHE_REPORTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

unsafe extern "C" fn log_errors(
    level: sys::ggml_log_level,
    text: *const std::os::raw::c_char,
    _: *mut std::ffi::c_void,
) {
    if std::env::var_os("ROOFLINEBENCH_ENGINE_LOG").is_some() && !text.is_null() {
        // SAFETY: as below.
        eprint!("{}", unsafe { CStr::from_ptr(text) }.to_string_lossy());
    }
    if level == sys::GGML_LOG_LEVEL_INFO && !text.is_null() {
        // SAFETY: as below.
        let line = unsafe { CStr::from_ptr(text) }.to_string_lossy();
        if line.starts_with("llama_kv_cache: size =") || line.starts_with("llama_memory_recurrent: size =") {
            if let Ok(mut r) = CACHE_REPORTS.lock() {
                r.push(line.trim().to_string());
            }
        }
    }
    if level == sys::GGML_LOG_LEVEL_ERROR && !text.is_null() {
        // SAFETY: llama.cpp passes a NUL-terminated string valid for this call.
        let line = unsafe { CStr::from_ptr(text) }.to_string_lossy().trim().to_string();
        if !line.is_empty() {
            if let Ok(mut e) = ERRORS.lock() {
                e.push(line);
            }
        }
    }
}

/// Initialises the backends once and silences everything below error level.
pub fn init() {
    INIT.call_once(|| unsafe {
        sys::llama_log_set(Some(log_errors), std::ptr::null_mut());
        sys::llama_backend_init();
    });
}

/// llama.cpp's cache reports since the last call.
pub fn take_cache_reports() -> Vec<String> {
    CACHE_REPORTS.lock().map(|mut r| std::mem::take(&mut *r)).unwrap_or_default()
}

/// llama.cpp's last error lines, joined, for an error message.
fn take_errors(what: &str) -> String {
    let lines = ERRORS.lock().map(|mut e| std::mem::take(&mut *e)).unwrap_or_default();
    match lines.last() {
        Some(last) => format!("{what}: {last}"),
        None => what.to_string(),
    }
}

fn c_path(path: &Path) -> Result<CString, String> {
    CString::new(path.to_string_lossy().as_bytes()).map_err(|_| format!("{}: a path with a NUL byte", path.display()))
}

/// ggml's CPU features as compiled and detected ("AVX2 = 1 | AVX512 = 1 | ..."), after the
/// GPUs of a GPU build ("CUDA0: NVIDIA GeForce RTX 3090 | ...").
pub fn system_info() -> String {
    init();
    // SAFETY: returns a pointer to a static string.
    let cpu = unsafe { CStr::from_ptr(sys::llama_print_system_info()) }.to_string_lossy().trim().to_string();
    let gpus = gpu_devices();
    if gpus.is_empty() {
        cpu
    } else {
        format!("{} | {cpu}", gpus.join(" | "))
    }
}

/// The GPUs ggml's backends found, as `name: description`.
fn gpu_devices() -> Vec<String> {
    let text = |p: *const std::os::raw::c_char| {
        // SAFETY: ggml returns NUL-terminated strings owned by the device, or null.
        if p.is_null() {
            String::new()
        } else {
            unsafe { CStr::from_ptr(p) }.to_string_lossy().trim().to_string()
        }
    };
    // SAFETY: the device registry lives for the process; indices below the count are valid.
    unsafe {
        (0..sys::ggml_backend_dev_count())
            .map(|i| sys::ggml_backend_dev_get(i))
            .filter(|&d| {
                let t = sys::ggml_backend_dev_type(d);
                t == sys::GGML_BACKEND_DEVICE_TYPE_GPU || t == sys::GGML_BACKEND_DEVICE_TYPE_IGPU
            })
            .map(|d| format!("{}: {}", text(sys::ggml_backend_dev_name(d)), text(sys::ggml_backend_dev_description(d))))
            .collect()
    }
}

/// Writes a GGUF file with the layout's metadata and tensors filled as the layout says (small
/// random values, or constants: norms at 1, state-space decays negative). The header and tensor table come from ggml's own
/// GGUF writer; the data is streamed after it, so no model ever sits in memory whole.
pub fn write_gguf(layout: &GgufLayout, path: &Path, seed: u64) -> Result<(), String> {
    init();
    let cpath = c_path(path)?;
    // SAFETY: every pointer below comes from ggml and is freed before returning; tensors live
    // in `ctx` (no data allocated) until gguf has copied their descriptions.
    unsafe {
        let gguf = sys::gguf_init_empty();
        for (key, value) in &layout.metadata {
            let k = CString::new(key.as_str()).expect("metadata keys have no NUL");
            match value {
                MetaValue::U32(v) => sys::gguf_set_val_u32(gguf, k.as_ptr(), *v),
                MetaValue::F32(v) => sys::gguf_set_val_f32(gguf, k.as_ptr(), *v),
                MetaValue::Bool(v) => sys::gguf_set_val_bool(gguf, k.as_ptr(), *v),
                MetaValue::Str(v) => {
                    let s = CString::new(v.as_str()).map_err(|_| format!("metadata {key}: a NUL byte"))?;
                    sys::gguf_set_val_str(gguf, k.as_ptr(), s.as_ptr())
                }
                // gguf copies the array.
                MetaValue::U32s(v) => sys::gguf_set_arr_data(
                    gguf,
                    k.as_ptr(),
                    sys::GGUF_TYPE_UINT32,
                    v.as_ptr() as *const std::ffi::c_void,
                    v.len(),
                ),
            }
        }
        let file_type = CString::new("general.file_type").expect("no NUL");
        sys::gguf_set_val_u32(gguf, file_type.as_ptr(), 1); // mostly f16
        let params = sys::ggml_init_params {
            mem_size: sys::ggml_tensor_overhead() * (layout.tensors.len() + 8),
            mem_buffer: std::ptr::null_mut(),
            no_alloc: true,
        };
        let ctx = sys::ggml_init(params);
        if ctx.is_null() {
            sys::gguf_free(gguf);
            return Err("ggml_init failed".into());
        }
        for t in &layout.tensors {
            let ty = GgufLayout::written_type(t).ggml_id().expect("written types are ggml types");
            let ne: Vec<i64> = t.shape.iter().map(|&d| d as i64).collect();
            let tensor = sys::ggml_new_tensor(ctx, ty as sys::ggml_type, ne.len() as i32, ne.as_ptr());
            let name = CString::new(t.name.as_str()).expect("tensor names have no NUL");
            sys::ggml_set_name(tensor, name.as_ptr());
            sys::gguf_add_tensor(gguf, tensor);
        }
        let ok = sys::gguf_write_to_file(gguf, cpath.as_ptr(), true);
        sys::ggml_free(ctx);
        sys::gguf_free(gguf);
        if !ok {
            return Err(take_errors(&format!("{}: could not write the GGUF header", path.display())));
        }
    }
    append_random_data(layout, path, seed).map_err(|e| format!("{}: {e}", path.display()))
}

/// GGUF data: each tensor in order, padded to the 32-byte alignment.
fn append_random_data(layout: &GgufLayout, path: &Path, seed: u64) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new().append(true).open(path)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 22, file);
    let mut rng = seed | 1;
    let (mut chunk, mut values, mut halves): (Vec<u8>, Vec<f32>, Vec<u16>) = (Vec::new(), Vec::new(), Vec::new());
    for t in &layout.tensors {
        let elements = t.elements();
        let written = GgufLayout::written_type(t);
        let mut left = elements;
        while left > 0 {
            let n = left.min(1 << 18) as usize;
            chunk.clear();
            values.clear();
            match t.fill {
                Fill::Noise => values.extend((0..n).map(|_| uniform(&mut rng) * 0.05)),
                Fill::Value(v) => values.resize(n, v),
            }
            match written {
                TensorType::F32 => values.iter().for_each(|v| chunk.extend_from_slice(&v.to_le_bytes())),
                _ => {
                    halves.resize(n, 0);
                    // SAFETY: both buffers hold n elements.
                    unsafe { sys::ggml_fp32_to_fp16_row(values.as_ptr(), halves.as_mut_ptr(), n as i64) };
                    halves.iter().for_each(|h| chunk.extend_from_slice(&h.to_le_bytes()));
                }
            }
            out.write_all(&chunk)?;
            left -= n as u64;
        }
        let bytes = written.bytes(elements);
        let pad = (32 - bytes % 32) % 32;
        out.write_all(&vec![0u8; pad as usize])?;
    }
    out.flush()
}

/// xorshift64*: uniform in [-1, 1).
fn uniform(state: &mut u64) -> f32 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    let x = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
    ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
}

/// Quantises `src` into `dst` with llama.cpp's own quantiser (`llama_model_quantize`).
pub fn quantize(src: &Path, dst: &Path, file_type: u32, threads: i32) -> Result<(), String> {
    init();
    let (s, d) = (c_path(src)?, c_path(dst)?);
    // SAFETY: plain call with valid C strings and a params struct from llama.cpp's defaults.
    let rc = unsafe {
        let mut p = sys::llama_model_quantize_default_params();
        p.nthread = threads;
        p.ftype = file_type as sys::llama_ftype;
        sys::llama_model_quantize(s.as_ptr(), d.as_ptr(), &p)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(take_errors(&format!("quantising {} failed", src.display())))
    }
}

/// Runs `read` on a GGUF file's header as ggml's parser reads it (no tensor data), and frees it.
/// `read` gets a valid context and must copy out what it keeps.
fn with_gguf_header<T>(path: &Path, read: impl FnOnce(*mut sys::gguf_context) -> T) -> Result<T, String> {
    init();
    let p = c_path(path)?;
    // SAFETY: no_alloc = true reads only the header; the context is freed before returning.
    unsafe {
        let params = sys::gguf_init_params { no_alloc: true, ctx: std::ptr::null_mut() };
        let g = sys::gguf_init_from_file(p.as_ptr(), params);
        if g.is_null() {
            return Err(take_errors(&format!("{}: not a readable GGUF file", path.display())));
        }
        let out = read(g);
        sys::gguf_free(g);
        Ok(out)
    }
}

/// Every tensor of a GGUF file with its stored ggml type and data bytes (read by ggml's parser).
pub fn tensor_types(path: &Path) -> Result<Vec<(String, u32, u64)>, String> {
    // SAFETY: every index is below the count ggml reports; names are copied.
    with_gguf_header(path, |g| unsafe {
        (0..sys::gguf_get_n_tensors(g))
            .map(|i| {
                let name = CStr::from_ptr(sys::gguf_get_tensor_name(g, i)).to_string_lossy().to_string();
                (name, sys::gguf_get_tensor_type(g, i) as u32, sys::gguf_get_tensor_size(g, i) as u64)
            })
            .collect()
    })
}

/// ggml's `GGML_MAX_DIMS` (a macro, which bindgen leaves out).
const GGML_MAX_DIMS: usize = 4;

/// A GGUF file's scalar metadata and tensor shapes, read by ggml's parser (header only).
pub fn contents(path: &Path) -> Result<GgufContents, String> {
    use serde_json::Value;
    // SAFETY: every index is below the counts ggml reports; strings are copied.
    with_gguf_header(path, |g| unsafe {
        let mut c = GgufContents::default();
        for i in 0..sys::gguf_get_n_kv(g) {
            let key = CStr::from_ptr(sys::gguf_get_key(g, i)).to_string_lossy().to_string();
            let v = match sys::gguf_get_kv_type(g, i) {
                sys::GGUF_TYPE_UINT8 => Value::from(sys::gguf_get_val_u8(g, i)),
                sys::GGUF_TYPE_INT8 => Value::from(sys::gguf_get_val_i8(g, i)),
                sys::GGUF_TYPE_UINT16 => Value::from(sys::gguf_get_val_u16(g, i)),
                sys::GGUF_TYPE_INT16 => Value::from(sys::gguf_get_val_i16(g, i)),
                sys::GGUF_TYPE_UINT32 => Value::from(sys::gguf_get_val_u32(g, i)),
                sys::GGUF_TYPE_INT32 => Value::from(sys::gguf_get_val_i32(g, i)),
                sys::GGUF_TYPE_UINT64 => Value::from(sys::gguf_get_val_u64(g, i)),
                sys::GGUF_TYPE_INT64 => Value::from(sys::gguf_get_val_i64(g, i)),
                sys::GGUF_TYPE_FLOAT32 => f32_value(sys::gguf_get_val_f32(g, i)),
                sys::GGUF_TYPE_FLOAT64 => Value::from(sys::gguf_get_val_f64(g, i)),
                sys::GGUF_TYPE_BOOL => Value::from(sys::gguf_get_val_bool(g, i)),
                sys::GGUF_TYPE_STRING => {
                    Value::from(CStr::from_ptr(sys::gguf_get_val_str(g, i)).to_string_lossy().to_string())
                }
                // Per-layer integers (head counts, layer kinds); not the tokenizer's lists.
                sys::GGUF_TYPE_ARRAY if !key.starts_with("tokenizer.") => {
                    let n = sys::gguf_get_arr_n(g, i);
                    let data = sys::gguf_get_arr_data(g, i);
                    let values: Vec<i64> = match sys::gguf_get_arr_type(g, i) {
                        sys::GGUF_TYPE_UINT32 => (0..n).map(|j| *(data as *const u32).add(j) as i64).collect(),
                        sys::GGUF_TYPE_INT32 => (0..n).map(|j| *(data as *const i32).add(j) as i64).collect(),
                        sys::GGUF_TYPE_BOOL => (0..n).map(|j| *(data as *const i8).add(j) as i64).collect(),
                        _ => continue,
                    };
                    Value::from(values)
                }
                _ => continue,
            };
            c.metadata.insert(key, v);
        }
        for i in 0..sys::gguf_get_n_tensors(g) {
            let name = CStr::from_ptr(sys::gguf_get_tensor_name(g, i)).to_string_lossy().to_string();
            let ne = std::slice::from_raw_parts(sys::gguf_get_tensor_ne(g, i), GGML_MAX_DIMS);
            // ggml pads the shape with 1s up to four dimensions; a vector keeps its one.
            let dims = ne.iter().rposition(|&n| n != 1).map_or(1, |d| d + 1);
            c.tensors.insert(name, ne[..dims].iter().map(|&n| n as u64).collect());
        }
        c
    })
}

pub struct Model {
    ptr: *mut sys::llama_model,
}

impl Model {
    /// Loads a GGUF model: memory-mapped on the CPU, or every layer on the GPU of a GPU build.
    pub fn load(path: &Path) -> Result<Model, String> {
        init();
        let p = c_path(path)?;
        // SAFETY: default params, valid path; a null result is an error.
        let ptr = unsafe {
            let mut params = sys::llama_model_default_params();
            params.n_gpu_layers = if super::OFFLOAD { 999 } else { 0 };
            if std::env::var_os("ROOFLINEBENCH_NO_EXTRA_BUFTS").is_some() {
                params.use_extra_bufts = false;
            }
            sys::llama_model_load_from_file(p.as_ptr(), params)
        };
        if ptr.is_null() {
            return Err(take_errors(&format!("llama.cpp could not load {}", path.display())));
        }
        Ok(Model { ptr })
    }

    /// llama.cpp's own parameter count.
    pub fn parameters(&self) -> u64 {
        // SAFETY: a live model.
        unsafe { sys::llama_model_n_params(self.ptr) }
    }

    /// Bytes of all weight tensors.
    pub fn size_bytes(&self) -> u64 {
        // SAFETY: a live model.
        unsafe { sys::llama_model_size(self.ptr) }
    }

    pub fn vocab_size(&self) -> i32 {
        // SAFETY: a live model; the vocab pointer lives as long as the model.
        unsafe { sys::llama_vocab_n_tokens(sys::llama_model_get_vocab(self.ptr)) }
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: freed once; contexts borrow the model and are dropped first.
        unsafe { sys::llama_model_free(self.ptr) }
    }
}

pub struct Context<'m> {
    ptr: *mut sys::llama_context,
    batch: sys::llama_batch,
    capacity: usize,
    _model: std::marker::PhantomData<&'m Model>,
}

/// How the context is set up; llama-bench's defaults unless stated.
#[derive(Debug, Clone, Copy)]
pub struct ContextSettings {
    /// KV cells (context length).
    pub n_ctx: u32,
    /// Tokens one `decode` call may take.
    pub n_batch: u32,
    /// Tokens one graph evaluation takes (llama.cpp splits longer batches).
    pub n_ubatch: u32,
    pub threads: i32,
}

impl<'m> Context<'m> {
    pub fn new(model: &'m Model, s: ContextSettings) -> Result<Context<'m>, String> {
        // SAFETY: default params adjusted; a null context is an error. The batch is freed in Drop.
        unsafe {
            let mut p = sys::llama_context_default_params();
            p.n_ctx = s.n_ctx;
            p.n_batch = s.n_batch;
            p.n_ubatch = s.n_ubatch.min(s.n_batch);
            p.n_seq_max = 1;
            // Sliding-window layers get the window-sized cache llama-cli, llama-server and
            // llama-bench give them (the C API's default is a full-size one), which is what the
            // footprint predicts (`Engine::window_cells`).
            p.swa_full = false;
            p.n_threads = s.threads;
            p.n_threads_batch = s.threads;
            p.no_perf = true;
            // A CPU build stays on the CPU even where ggml has a GPU backend anyway (Metal is
            // built on every Apple target): no offload of large host-weight products.
            p.op_offload = super::OFFLOAD;
            if let Ok(v) = std::env::var("ROOFLINEBENCH_FLASH_ATTN") {
                p.flash_attn_type = v.parse::<i32>().unwrap_or(-1) as sys::llama_flash_attn_type;
            }
            let ptr = sys::llama_init_from_model(model.ptr, p);
            if ptr.is_null() {
                return Err(take_errors("llama.cpp could not create a context"));
            }
            let batch = sys::llama_batch_init(s.n_batch as i32, 0, 1);
            Ok(Context { ptr, batch, capacity: s.n_batch as usize, _model: std::marker::PhantomData })
        }
    }

    /// Empties the KV cache.
    pub fn clear(&mut self) {
        // SAFETY: a live context.
        unsafe { sys::llama_memory_clear(sys::llama_get_memory(self.ptr), true) }
    }

    /// The KV cache of sequence 0, to restore later instead of recomputing it.
    pub fn save(&mut self) -> Vec<u8> {
        // SAFETY: a live context; the buffer is sized by llama.cpp for this sequence.
        unsafe {
            let size = sys::llama_state_seq_get_size(self.ptr, 0);
            let mut buf = vec![0u8; size];
            let written = sys::llama_state_seq_get_data(self.ptr, buf.as_mut_ptr(), size, 0);
            buf.truncate(written);
            buf
        }
    }

    /// Replaces the KV cache with one `save` returned.
    pub fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        self.clear();
        // SAFETY: a live context and a buffer from `save` on a context of the same model.
        let n = unsafe { sys::llama_state_seq_set_data(self.ptr, state.as_ptr(), state.len(), 0) };
        if n == 0 {
            Err(take_errors("llama.cpp could not restore a saved KV cache"))
        } else {
            Ok(())
        }
    }

    /// Decodes `tokens` at positions `pos0..` of sequence 0, with logits for the last token
    /// only (as generation does), and waits for the result.
    pub fn decode(&mut self, tokens: &[i32], pos0: i32) -> Result<(), String> {
        assert!(tokens.len() <= self.capacity && !tokens.is_empty(), "batch sized by the caller");
        // SAFETY: the batch was allocated for `capacity` tokens with one sequence id each.
        unsafe {
            let b = &mut self.batch;
            b.n_tokens = tokens.len() as i32;
            for (i, &t) in tokens.iter().enumerate() {
                *b.token.add(i) = t;
                *b.pos.add(i) = pos0 + i as i32;
                *b.n_seq_id.add(i) = 1;
                *(*b.seq_id.add(i)).add(0) = 0;
                *b.logits.add(i) = i8::from(i + 1 == tokens.len());
            }
            let rc = sys::llama_decode(self.ptr, *b);
            sys::llama_synchronize(self.ptr);
            if rc != 0 {
                return Err(take_errors(&format!("llama_decode returned {rc}")));
            }
        }
        Ok(())
    }
}

impl Drop for Context<'_> {
    fn drop(&mut self) {
        // SAFETY: both freed once, batch first.
        unsafe {
            sys::llama_batch_free(self.batch);
            sys::llama_free(self.ptr);
        }
    }
}
