#include "core/cuda_backend.h"

#include <cstddef>

#include "core/log.h"
#include "core/status.h"

namespace inf {

namespace {

// A zeroed message buffer for one plug-in call.
struct PluginError {
    char text[INF_PLUGIN_ERROR_CAPACITY] = {};
};

// Takes the status as an integer: a plug-in from another build may return a code this core does not know.
void check(std::int32_t status, PluginError& error, const char* call) {
    if (status == INF_STATUS_OK) {
        return;
    }
    error.text[sizeof error.text - 1] = '\0';
    if (status < INF_STATUS_OK || status > INF_STATUS_INTERNAL) {
        fail(INF_STATUS_INTERNAL, "CUDA plug-in returned unknown status ", status, " from ", call, ": ", error.text);
    }
    const auto known = static_cast<inf_status>(status);
    if (error.text[0] == '\0') {
        fail(known, "CUDA plug-in ", call, " failed: ", status_name(status));
    }
    throw Error(known, error.text);
}

class PluginBackend final : public Backend {
public:
    PluginBackend(const inf_plugin_api* api, std::int32_t device_count) : api_(api), device_count_(device_count) {}

    inf_device_kind kind() const noexcept override { return INF_DEVICE_KIND_CUDA; }
    bool host_accessible() const noexcept override { return false; }
    std::int32_t device_count() const override { return device_count_; }

    void device_info(std::int32_t ordinal, inf_device_info& info) const override {
        check_ordinal(*this, ordinal);
        inf_plugin_device_info plugin_info{};
        PluginError error;
        check(api_->device_info(ordinal, &plugin_info, error.text, sizeof error.text), error, "device_info");
        plugin_info.name[sizeof plugin_info.name - 1] = '\0';
        info.kind = INF_DEVICE_KIND_CUDA;
        info.ordinal = ordinal;
        info.compute_units = plugin_info.compute_units;
        info.total_memory = plugin_info.total_memory;
        info.free_memory = plugin_info.free_memory;
        info.capability_major = plugin_info.capability_major;
        info.capability_minor = plugin_info.capability_minor;
        info.features = 0;
        info.reserved = 0;
        copy_device_name(info.name, sizeof info.name, plugin_info.name);
    }

    void* allocate(std::int32_t ordinal, std::uint64_t bytes) override {
        void* pointer = nullptr;
        PluginError error;
        check(api_->allocate(ordinal, bytes, &pointer, error.text, sizeof error.text), error, "allocate");
        if (pointer == nullptr) {
            fail(INF_STATUS_INTERNAL, "CUDA plug-in allocate returned no pointer for ", bytes, " bytes on ",
                 device_label(kind(), ordinal));
        }
        return pointer;
    }

    void deallocate(std::int32_t ordinal, void* pointer, std::uint64_t bytes) noexcept override {
        PluginError error;
        const std::int32_t status = api_->deallocate(ordinal, pointer, error.text, sizeof error.text);
        if (status != INF_STATUS_OK) {
            error.text[sizeof error.text - 1] = '\0';
            log(INF_LOG_LEVEL_ERROR, "freeing ", bytes, " bytes on cuda:", ordinal, " failed: ", error.text);
        }
    }

    void copy_from_host(std::int32_t ordinal, void* dst, const void* src, std::uint64_t bytes) override {
        PluginError error;
        check(api_->copy_from_host(ordinal, dst, src, bytes, error.text, sizeof error.text), error, "copy_from_host");
    }
    void copy_to_host(std::int32_t ordinal, void* dst, const void* src, std::uint64_t bytes) override {
        PluginError error;
        check(api_->copy_to_host(ordinal, dst, src, bytes, error.text, sizeof error.text), error, "copy_to_host");
    }
    void copy_within(std::int32_t ordinal, void* dst, const void* src, std::uint64_t bytes) override {
        PluginError error;
        check(api_->copy_within(ordinal, dst, src, bytes, error.text, sizeof error.text), error, "copy_within");
    }
    void copy_peer(std::int32_t dst_ordinal, void* dst, std::int32_t src_ordinal, const void* src,
                   std::uint64_t bytes) override {
        PluginError error;
        check(api_->copy_peer(dst_ordinal, dst, src_ordinal, src, bytes, error.text, sizeof error.text), error,
              "copy_peer");
    }
    void fill(std::int32_t ordinal, void* dst, std::uint64_t pattern, std::uint32_t pattern_bytes,
              std::uint64_t count) override {
        PluginError error;
        check(api_->fill(ordinal, dst, pattern, pattern_bytes, count, error.text, sizeof error.text), error, "fill");
    }
    void synchronize(std::int32_t ordinal) override {
        PluginError error;
        check(api_->synchronize(ordinal, error.text, sizeof error.text), error, "synchronize");
    }

    // Paged-KV kernels: forwarded when the plug-in's table has them (a table from an older build, or
    // the test fake, may end before them or leave them null), else INF_STATUS_UNSUPPORTED.
    void kv_append(std::int32_t ordinal, const inf_kv_append_params& params) override {
        check_ordinal(*this, ordinal);
        const auto fn = entry(offsetof(inf_plugin_api, kv_append), api_->kv_append);
        if (fn == nullptr) {
            unsupported("kv_append", ordinal);
        }
        PluginError error;
        check(fn(ordinal, &params, error.text, sizeof error.text), error, "kv_append");
    }
    void attention(std::int32_t ordinal, const inf_attention_params& params) override {
        check_ordinal(*this, ordinal);
        const auto fn = entry(offsetof(inf_plugin_api, attention), api_->attention);
        if (fn == nullptr) {
            unsupported("attention", ordinal);
        }
        PluginError error;
        check(fn(ordinal, &params, error.text, sizeof error.text), error, "attention");
    }
    void attention_merge(std::int32_t ordinal, const inf_attention_merge_params& params) override {
        check_ordinal(*this, ordinal);
        const auto fn = entry(offsetof(inf_plugin_api, attention_merge), api_->attention_merge);
        if (fn == nullptr) {
            unsupported("attention merge", ordinal);
        }
        PluginError error;
        check(fn(ordinal, &params, error.text, sizeof error.text), error, "attention_merge");
    }
    // 0 when the plug-in has no attention at all: attention() then reports UNSUPPORTED itself.
    std::uint64_t attention_workspace_bytes(std::int32_t ordinal, const inf_attention_params& params) const override {
        check_ordinal(*this, ordinal);
        const auto fn = entry(offsetof(inf_plugin_api, attention_workspace_bytes), api_->attention_workspace_bytes);
        if (fn == nullptr) {
            return 0;
        }
        std::uint64_t bytes = 0;
        PluginError error;
        check(fn(ordinal, &params, &bytes, error.text, sizeof error.text), error, "attention_workspace_bytes");
        return bytes;
    }

    void page_select(std::int32_t ordinal, const inf_page_select_params& params) override {
        check_ordinal(*this, ordinal);
        const auto fn = entry(offsetof(inf_plugin_api, page_select), api_->page_select);
        if (fn == nullptr) {
            unsupported("page_select", ordinal);
        }
        PluginError error;
        check(fn(ordinal, &params, error.text, sizeof error.text), error, "page_select");
    }
    // 0 when the plug-in has no page_select (page_select() then reports UNSUPPORTED itself) or keeps
    // its own scratch (the CUDA plug-in).
    std::uint64_t page_select_workspace_bytes(std::int32_t ordinal, const inf_page_select_params& params) const override {
        check_ordinal(*this, ordinal);
        const auto fn = entry(offsetof(inf_plugin_api, page_select_workspace_bytes), api_->page_select_workspace_bytes);
        if (fn == nullptr) {
            return 0;
        }
        std::uint64_t bytes = 0;
        PluginError error;
        check(fn(ordinal, &params, &bytes, error.text, sizeof error.text), error, "page_select_workspace_bytes");
        return bytes;
    }

    // The model step: both table fields are needed (a table from an older build ends before them; the
    // test fake leaves them null).
    void require_model_step(std::int32_t ordinal) const override {
        check_ordinal(*this, ordinal);
        if (entry(offsetof(inf_plugin_api, model_step_workspace_bytes), api_->model_step_workspace_bytes) == nullptr ||
            entry(offsetof(inf_plugin_api, model_step), api_->model_step) == nullptr) {
            unsupported("the model forward step", ordinal);
        }
    }
    std::uint64_t model_step_workspace_bytes(std::int32_t ordinal, const inf_plugin_model_step& params) const override {
        require_model_step(ordinal);
        std::uint64_t bytes = 0;
        PluginError error;
        check(api_->model_step_workspace_bytes(ordinal, &params, &bytes, error.text, sizeof error.text), error,
              "model_step_workspace_bytes");
        return bytes;
    }
    void model_step(std::int32_t ordinal, const inf_plugin_model_step& params) override {
        require_model_step(ordinal);
        PluginError error;
        check(api_->model_step(ordinal, &params, error.text, sizeof error.text), error, "model_step");
    }

private:
    // The field at offset, when the table's size covers it; else null. The field is read only then:
    // a shorter table's memory ends before it.
    template <class Fn>
    Fn entry(std::size_t offset, const Fn& field) const noexcept {
        return api_->size >= offset + sizeof(Fn) ? field : nullptr;
    }
    [[noreturn]] void unsupported(const char* what, std::int32_t ordinal) const {
        fail(INF_STATUS_UNSUPPORTED, what, " is not implemented by the CUDA plug-in loaded for ",
             device_label(kind(), ordinal), " (", api_->description != nullptr ? api_->description : "", ")");
    }

    const inf_plugin_api* api_;
    std::int32_t device_count_;
};

}  // namespace

std::unique_ptr<Backend> make_plugin_backend(const inf_plugin_api* api, std::int32_t device_count) {
    return std::make_unique<PluginBackend>(api, device_count);
}

}  // namespace inf
