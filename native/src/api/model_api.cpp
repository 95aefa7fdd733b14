// Exports: Llama-family models (weights on a device) and their forward step over a page pool.
// The model is a registry handle like a page pool; a step validates the whole plan (model/step_checks.h)
// before it touches the pool. A CPU model runs the step in the core (LlamaModel); a CUDA model in the plug-in
// (CudaLlamaModel), dense steps only.
#include <cstddef>

#include "api/batch_checks.h"
#include "api/checks.h"
#include "comm/comm_handle.h"
#include "model/blas.h"
#include "model/model_handle.h"
#include "model/model_config.h"
#include "model/step_checks.h"

using namespace inf;

namespace {

std::shared_ptr<ModelHandle> find_model(const inf_model* handle, const char* argument) {
    return find_handle<ModelHandle>(handle, HandleKind::model, argument);
}

}  // namespace

extern "C" {

INF_API inf_status inf_model_create(inf_device* device, const inf_model_config* config, const inf_tensor* tensors,
                                    int32_t tensor_count, inf_progress_callback progress, void* user_data,
                                    inf_model** out_model) {
    return guard("inf_model_create", [&] {
        if (out_model != nullptr) {
            *out_model = nullptr;
        }
        auto owner = api::find_device(device, "device");
        const inf_model_config shape = api::read_versioned(config, "config", "inf_model_config");
        validate_model_config(shape);
        api::require_pointer(out_model, "out_model");
        auto model = std::make_shared<ModelHandle>();
        if (owner->kind() == INF_DEVICE_KIND_CPU) {
            blas::require();
            model->cpu = std::make_unique<LlamaModel>(std::move(owner), shape, tensors, tensor_count, progress, user_data);
        } else if (owner->kind() == INF_DEVICE_KIND_CUDA) {
            model->cuda = std::make_unique<CudaLlamaModel>(std::move(owner), shape, tensors, tensor_count, progress, user_data);
        } else {
            fail(INF_STATUS_UNSUPPORTED, "model forward is not implemented on ", owner->label());
        }
        const std::uintptr_t handle = HandleRegistry::instance().add(HandleKind::model, std::move(model));
        *out_model = reinterpret_cast<inf_model*>(handle);
    });
}

INF_API inf_status inf_model_destroy(inf_model* model) {
    return guard("inf_model_destroy", [&] {
        if (model == nullptr) {
            return;
        }
        HandleRegistry::instance().remove(reinterpret_cast<std::uintptr_t>(model), HandleKind::model, "model");
    });
}

INF_API inf_status inf_model_bytes(const inf_model* model, uint64_t* out_bytes) {
    return guard("inf_model_bytes", [&] {
        const auto object = find_model(model, "model");
        api::require_pointer(out_bytes, "out_bytes");
        *out_bytes = object->bytes();
    });
}

INF_API inf_status inf_model_step(inf_model* model, inf_page_pool* pool, const inf_step_plan* plan, float* logits) {
    return guard("inf_model_step", [&] {
        const auto object = find_model(model, "model");
        const auto kv = api::find_pool(pool, "pool");
        if (!kv->device().same_device(object->device())) {
            fail(INF_STATUS_DEVICE_MISMATCH, "pool lives on ", kv->device().label(), " but the model on ",
                 object->device().label());
        }
        const inf_step_plan p = api::read_versioned(plan, "plan", "inf_step_plan");
        if (object->cuda) {
            // Refused before the checks: their arrays are CPU-only features' (Λ windows, selection store, peers).
            if (p.exchange != nullptr) {
                fail(INF_STATUS_UNSUPPORTED, "plan->exchange (a distributed step) is not supported on ", object->device().label(),
                     ": distributed steps run on CPU instances");
            }
            if (p.sparse != nullptr) {
                fail(INF_STATUS_UNSUPPORTED, "plan->sparse (a sparse step) is not supported by the model step on ",
                     object->device().label(), " yet: pass plan->sparse = null for a dense step");
            }
            const StepShape shape = check_step(object->config(), *kv, p, logits);
            object->cuda->step(*kv, p, shape, logits);
            return;
        }
        // A distributed step: its communicator stays alive (shared ownership) for the whole step.
        std::shared_ptr<Communicator> comm;
        if (p.exchange != nullptr) {
            const inf_step_exchange ex = api::read_versioned(p.exchange, "plan->exchange", "inf_step_exchange");
            comm = find_communicator(ex.comm, "plan->exchange->comm");
        }
        // A ring of streaming heads: its pool stays alive (shared ownership) for the whole step.
        std::shared_ptr<PagePool> ring_pool;
        if (p.sparse != nullptr) {
            const inf_sparse_step sp = api::read_versioned(p.sparse, "plan->sparse", "inf_sparse_step",
                                                           offsetof(inf_sparse_step, ring));
            if (sp.ring != nullptr) {
                const inf_streaming_ring ring = api::read_versioned(sp.ring, "plan->sparse->ring", "inf_streaming_ring");
                ring_pool = api::find_pool(ring.pool, "plan->sparse->ring->pool");
            }
        }
        const StepShape shape = check_step(object->config(), *kv, p, logits, comm.get(), ring_pool.get());
        object->cpu->step(*kv, p, shape, logits);
    });
}

}  // extern "C"
