// Errors inside the core and their conversion to inf_status at the C boundary.
//
// Internal code reports failures by throwing inf::Error (a status plus a message that names the
// argument). Every export runs its body through guard(), which turns any exception into a status and
// a per-thread message for inf_last_error(), so no exception ever crosses the C ABI.
#pragma once

#include <cstdint>
#include <cstring>
#include <exception>
#include <new>
#include <ostream>
#include <sstream>
#include <string>
#include <utility>

#include "infinite/infinite.h"

namespace inf {

// Concatenates the arguments with operator<<. For messages only: never on a hot path.
template <class... Args>
std::string cat(const Args&... args) {
    std::ostringstream stream;
    (stream << ... << args);
    return stream.str();
}

// Prints an integer as 0x... (handles, addresses).
struct Hex {
    std::uint64_t value;
};
std::ostream& operator<<(std::ostream& stream, Hex hex);

class Error : public std::exception {
public:
    Error(inf_status status, std::string message) : status_(status), message_(std::move(message)) {}
    inf_status status() const noexcept { return status_; }
    const char* what() const noexcept override { return message_.c_str(); }

private:
    inf_status status_;
    std::string message_;
};

template <class... Args>
[[noreturn]] void fail(inf_status status, const Args&... args) {
    throw Error(status, cat(args...));
}

// The integer a C caller passed for an enum parameter. C allows any int in an enum; C++ does not, and
// UBSan (-fsanitize=enum) aborts on loading an out-of-range value as the enum type. So every enum that
// comes through the ABI is read as an integer first (memcpy) and only used as the enum once validated.
template <class Enum>
std::int32_t raw_enum(const Enum& value) noexcept {
    static_assert(sizeof(Enum) == sizeof(std::int32_t), "C ABI enums are int-sized");
    std::int32_t raw = 0;
    std::memcpy(&raw, &value, sizeof raw);
    return raw;
}

// "INF_STATUS_OUT_OF_RANGE", or "INF_STATUS_UNKNOWN" for values outside the enum.
const char* status_name(std::int32_t status) noexcept;

// Stores "<function>: <message>[<detail>]" as this thread's last error. Never throws: if the message
// cannot be stored, a static fallback text takes its place.
void set_last_error(const char* function, const char* message, const char* detail = nullptr) noexcept;

// This thread's last error message, "" if no call failed on it yet.
const char* last_error() noexcept;

// Runs body and converts whatever it throws into a status; the message goes to set_last_error.
template <class Body>
inf_status guard(const char* function, Body&& body) noexcept {
    try {
        body();
        return INF_STATUS_OK;
    } catch (const Error& error) {
        set_last_error(function, error.what());
        return error.status();
    } catch (const std::bad_alloc&) {
        set_last_error(function, "out of host memory");
        return INF_STATUS_OUT_OF_MEMORY;
    } catch (const std::exception& error) {
        set_last_error(function, "internal error: ", error.what());
        return INF_STATUS_INTERNAL;
    } catch (...) {
        set_last_error(function, "internal error: unknown exception");
        return INF_STATUS_INTERNAL;
    }
}

}  // namespace inf
