// qtensor/io/gguf.hpp: GGUF v3 files (ggml, llama.cpp): a strict reader over
// a memory-mapped file, and a writer, in three parts:
//   gguf_value.hpp   metadata values (gguf_value, gguf_kv), ggml's limits,
//                    the little-endian encoding, tensor block geometry
//   gguf_reader.hpp  gguf_file, the reader
//   gguf_writer.hpp  gguf_writer, the writer
//
// Layout (all little-endian; docs/gguf.md):
//   "GGUF" | u32 version = 3 | u64 tensor_count | u64 kv_count
//   kv_count     x { string key | u32 value type | value }
//   tensor_count x { string name | u32 n_dims | n_dims x u64 ne | u32 ggml_type | u64 offset }
//   zero padding to the alignment                          <- data_offset()
//   tensor data in info order, each tensor zero-padded to the alignment
// A string is a u64 byte count and the bytes (no NUL). An array value is a u32
// element type, a u64 count and the elements packed. ne[0] is the innermost
// (row) dimension, the reverse of the outermost-first shapes of tensor_entry.
// The alignment is the u32 key general.alignment, 32 when absent.
#pragma once

#include "qtensor/io/gguf_reader.hpp"
#include "qtensor/io/gguf_value.hpp"
#include "qtensor/io/gguf_writer.hpp"
