// Frames freed after their thread's frame pool is gone: a task held in a thread_local made
// before the pool (so destroyed after it), and one with static storage, destroyed after the
// main thread's thread_locals. ctest runs this under valgrind, which reports any write into
// the destroyed pool.

#include <sock/task.hpp>

#include <optional>
#include <thread>

namespace {

sock::task<> never_started() { co_return; }

}  // namespace

int main() {
    std::thread([] {
        thread_local std::optional<sock::task<>> holder;  // registered before the pool...
        holder.emplace(never_started());                 // ...which this allocation creates
        { auto cached = never_started(); }                // leaves a frame in the pool's list
    }).join();
    static std::optional<sock::task<>> at_exit;
    at_exit.emplace(never_started());
    { auto cached = never_started(); }
    return 0;
}
