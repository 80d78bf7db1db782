// Interrupts (classifier.hpp, set_should_stop): the long loops of the core
// ask the installed callback, and stop with Error(Kind::Interrupted).
#include "optout/classifier.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

int calls = 0;
bool stop_now = false;
bool counting_callback() {
    ++calls;
    return stop_now;
}

struct InterruptTest : ::testing::Test {
    void SetUp() override {
        calls = 0;
        stop_now = false;
        optout::set_should_stop(&counting_callback);
    }
    void TearDown() override { optout::set_should_stop(nullptr); }
};

optout::Error::Kind kind_of(const std::string& body, optout::Mode mode) {
    try {
        (void)optout::classify(body, mode, optout::KeywordSet::defaults());
    } catch (const optout::Error& e) {
        return e.kind();
    }
    return optout::Error::Kind::InvalidKeyword;  // not thrown
}

TEST_F(InterruptTest, ShortBodyNeverAsks) {
    EXPECT_EQ(optout::classify("STOP", optout::Mode::Standard, optout::KeywordSet::defaults()).intent,
              optout::Intent::OptOut);
    EXPECT_EQ(calls, 0);
}

TEST_F(InterruptTest, LargeBodyAsksAndFinishes) {
    const std::string body(4u << 20, 'x');
    (void)optout::classify(body, optout::Mode::Reasonable, optout::KeywordSet::defaults());
    EXPECT_GT(calls, 0);
    const std::string stops = [] {
        std::string s;
        for (int i = 0; i < 300000; ++i) s += "stop ";
        return s;
    }();
    EXPECT_EQ(optout::classify(stops, optout::Mode::Standard, optout::KeywordSet::defaults()).intent,
              optout::Intent::OptOut);
}

TEST_F(InterruptTest, StopThrowsInterrupted) {
    stop_now = true;
    EXPECT_EQ(kind_of(std::string(4u << 20, 'x'), optout::Mode::Standard), optout::Error::Kind::Interrupted);
    std::string accents;
    for (int i = 0; i < (1 << 19); ++i) accents += "\xc3\xa9";  // é: the ICU path
    EXPECT_EQ(kind_of(accents, optout::Mode::Reasonable), optout::Error::Kind::Interrupted);
    EXPECT_THROW((void)optout::normalize(accents), optout::Error);
    // After an interrupt the core works as before.
    stop_now = false;
    EXPECT_EQ(optout::classify("Stop please", optout::Mode::Standard, optout::KeywordSet::defaults()).intent,
              optout::Intent::OptOut);
}

}  // namespace
