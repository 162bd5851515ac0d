#pragma once

// The whole blocking API: Python's socket module in C++.
#include <sock/address.hpp>
#include <sock/create.hpp>
#include <sock/error.hpp>
#include <sock/names.hpp>
#include <sock/options.hpp>
#include <sock/selector.hpp>
#include <sock/socket.hpp>
#include <sock/stream.hpp>
#include <sock/systemd.hpp>
#include <sock/version.hpp>
