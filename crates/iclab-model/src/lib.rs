//! iclab-model: the GPT-2-style in-context learner of docs/study.md, hand-written llm.c style over
//! flat f32 buffers ([`gpt`], built from the layer passes of [`layers`] and the kernel of
//! [`matmul`]).

pub mod adam;
pub mod bench;
mod buf;
pub mod checkpoint;
pub mod config;
pub mod gpt;
pub mod hash;
pub mod layers;
pub mod lock;
pub mod matmul;
pub mod simd;
pub mod train;

pub use gpt::{Gpt, ModelConfig, TensorInfo};
pub use layers::Tokens;
