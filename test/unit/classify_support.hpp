// Helpers shared by the classifier's unit tests (classify_test.cpp,
// families_test.cpp): the default keyword set, built once; classify() with
// the normalised text asked for; a long repeated input.
#pragma once

#include "optout/classifier.hpp"

#include <cstddef>
#include <string>
#include <string_view>

namespace optout_test {

inline const optout::KeywordSet& defaults() {
    static const optout::KeywordSet k = optout::KeywordSet::defaults();
    return k;
}

inline optout::Match run(std::string_view body, optout::Mode mode) {
    return optout::classify(body, mode, defaults(), true);
}

inline std::string repeat(const std::string& unit, std::size_t times) {
    std::string s;
    s.reserve(unit.size() * times);
    for (std::size_t i = 0; i < times; ++i) s += unit;
    return s;
}

}  // namespace optout_test
