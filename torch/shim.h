// shim.h is the whole contract between Go and libtorch.
//
// Rules every function follows:
//   - The return value is NULL on success, or an error message allocated with
//     malloc that the caller frees with free(). There is no error slot kept
//     between calls: Go may move a goroutine to another OS thread between two
//     cgo calls, so the error travels with the call that failed.
//   - Every function catches std::exception and `...`; no C++ exception ever
//     unwinds into Go.
//   - Handles (et_tensor, et_module, et_adamw, et_guard) are owned by the
//     caller and released with the matching *_free function exactly once.
//   - Output parameters are written only on success.
#ifndef EMBTUNE_TORCH_SHIM_H
#define EMBTUNE_TORCH_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct et_tensor_s* et_tensor;
typedef struct et_module_s* et_module;
typedef struct et_adamw_s* et_adamw;
typedef struct et_guard_s* et_guard;

// Scalar types use c10::ScalarType's numbering:
// 0 uint8, 1 int8, 2 int16, 3 int32, 4 int64, 5 float16, 6 float32,
// 7 float64, 11 bool, 15 bfloat16.
// Device types use c10::DeviceType's numbering: 0 CPU, 1 CUDA.

// ---- library ----
char* et_version(char** out);                 // "2.11.0"; free *out
char* et_show_config(char** out);             // free *out
char* et_set_num_threads(int n);
char* et_get_num_threads(int* out);
char* et_manual_seed(uint64_t seed);
char* et_cuda_device_count(int* out);         // 0 when libtorch_cuda is not linked
char* et_set_grad_enabled(int enabled, int* previous);
char* et_set_graph_executor_optimize(int on, int* previous);
char* et_autocast_set(int device_type, int enabled, int scalar_type, int* previous);
char* et_autocast_clear_cache(void);
// The guard lives on the calling OS thread until et_guard_free.
char* et_inference_mode_new(et_guard* out);
void et_guard_free(et_guard g);
// The kernels of encoder_ops.cpp that run now: "avx512", "avx2" or "aten"; free *out.
char* et_encoder_ops_kernels(char** out);

// ---- tensors ----
// Copies nbytes from data into a new CPU tensor of the given shape and type.
char* et_tensor_from_data(const void* data, size_t nbytes, const int64_t* shape,
                          int ndim, int scalar_type, et_tensor* out);
char* et_tensor_zeros(const int64_t* shape, int ndim, int scalar_type,
                      int device_type, int device_index, et_tensor* out);
char* et_tensor_randn(const int64_t* shape, int ndim, int scalar_type, et_tensor* out);
// Copies the tensor's elements (moved to CPU, made contiguous) into dst,
// which must hold exactly numel * element size bytes of the tensor's type.
char* et_tensor_copy_to(et_tensor t, void* dst, size_t nbytes);
char* et_tensor_ndim(et_tensor t, int* out);
char* et_tensor_shape(et_tensor t, int64_t* dims, int cap);
char* et_tensor_scalar_type(et_tensor t, int* out);
char* et_tensor_device(et_tensor t, int* device_type, int* device_index);
char* et_tensor_requires_grad(et_tensor t, int* out);
char* et_tensor_set_requires_grad(et_tensor t, int on);
char* et_tensor_to(et_tensor t, int device_type, int device_index, int scalar_type, et_tensor* out);
char* et_tensor_shallow_clone(et_tensor t, et_tensor* out);
char* et_tensor_detach(et_tensor t, et_tensor* out);
char* et_tensor_item_double(et_tensor t, double* out);
char* et_tensor_backward(et_tensor t);
// *out is NULL when the tensor has no gradient.
char* et_tensor_grad(et_tensor t, et_tensor* out);
char* et_tensor_copy_(et_tensor dst, et_tensor src);
void et_tensor_free(et_tensor t);

// a @ b; torch.cat(ts, dim); a * s.
char* et_tensor_matmul(et_tensor a, et_tensor b, et_tensor* out);
char* et_tensor_cat(et_tensor* ts, int n, int64_t dim, et_tensor* out);
char* et_tensor_mul_scalar(et_tensor a, double s, et_tensor* out);
// sum(x * mask) / clamp(sum(mask), 1e-9) over the sequence axis, then
// optionally x / max(||x||_2, 1e-12) (sentence-transformers' Pooling + Normalize).
char* et_mean_pool(et_tensor token_embeddings, et_tensor mask, int normalize, et_tensor* out);
char* et_tensor_narrow(et_tensor t, int64_t dim, int64_t start, int64_t length, et_tensor* out);
char* et_tensor_arange(int64_t n, int device_type, int device_index, et_tensor* out);
// A device's default generator state (a uint8 CPU tensor), for exact
// resumption: the CPU's, or a CUDA device's (dropout on the GPU).
char* et_rng_get_state(int device_type, int device_index, et_tensor* out);
char* et_rng_set_state(int device_type, int device_index, et_tensor state);
// Clips the total 2-norm of the gradients; returns the norm before clipping.
char* et_clip_grad_norm(et_tensor* params, int n, double max_norm, double* total_norm);

// ---- TorchScript modules ----
char* et_module_new(const char* name, et_module* out);
char* et_module_load(const char* path, int device_type, int device_index, et_module* out);
char* et_module_save(et_module m, const char* path);
char* et_module_register_parameter(et_module m, const char* name, et_tensor t, int requires_grad);
// Compiles TorchScript source into methods. Names resolve as in TorchScript's
// native resolver (`torch` is aten), plus `embtune` for the operators
// registered in ops.cpp (embtune.dropout_mask(like, p)).
char* et_module_define(et_module m, const char* source);
// A new module over src's own parameter tensors (shared, not copied: an
// optimizer over src's parameters updates both), compiled from source. src
// must have no submodules.
char* et_module_redefine(et_module src, const char* name, const char* source, et_module* out);
// Runs method with tensor inputs. A tuple or list result fills up to cap outputs;
// *nout receives how many the method returned.
char* et_module_run(et_module m, const char* method, et_tensor* inputs, int nin,
                    et_tensor* outputs, int cap, int* nout);
// Every parameter, recursively, in registration order, in one call. Names
// are dotted paths. *names, each name, and *tensors are malloc'ed (the caller
// frees them, and owns the tensors); both are NULL when *n is 0.
char* et_module_parameters(et_module m, char*** names, et_tensor** tensors, int* n);
char* et_module_set_parameter(et_module m, const char* name, et_tensor value);
char* et_module_train(et_module m, int on);
char* et_module_is_training(et_module m, int* out);
char* et_module_to(et_module m, int device_type, int device_index);
void et_module_free(et_module m);

// ---- dynamic quantization (quantized.cpp) ----
// Comma-separated engines compiled into libtorch ("fbgemm,onednn,x86,qnnpack").
char* et_quantized_engines(char** out);       // free *out
char* et_quantized_engine(char** out);        // the engine in use; free *out
char* et_fbgemm_isa(char** out);             // fbgemm's int8 instruction set; free *out
// Process-wide; an engine this libtorch lacks is an error naming those it has.
char* et_set_quantized_engine(const char* name);
// Quantizes and prepacks a Linear weight [out, in] (bias [out] or NULL) with the
// current engine and registers the packed object as attribute name, for
// quantized.linear_dynamic (kind 0: int8 per-channel, 1: int8 per-tensor) or
// quantized.linear_dynamic_fp16 (kind 2: fp16 weights).
char* et_module_register_linear_packed(et_module m, const char* name, et_tensor weight, et_tensor bias,
                                       int kind);

// ---- AdamW ----
char* et_adamw_new(double lr, double beta1, double beta2, double eps, et_adamw* out);
char* et_adamw_add_group(et_adamw o, et_tensor* params, int n, double lr, double weight_decay);
char* et_adamw_set_lr(et_adamw o, int group, double lr);
char* et_adamw_zero_grad(et_adamw o);
char* et_adamw_step(et_adamw o);
char* et_adamw_save(et_adamw o, const char* path);
char* et_adamw_load(et_adamw o, const char* path);
void et_adamw_free(et_adamw o);

#ifdef __cplusplus
}
#endif

#endif
