// File: tests/runtime/base/redact_test.cpp
// A PKCS#11 PIN never survives without_pins, wherever it sits in the text, and nothing else changes.
#include "runtime/base/redact.h"

#include <gtest/gtest.h>

namespace albion {
namespace {

TEST(WithoutPins, HidesEveryPinValueAndKeepsTheRest) {
  EXPECT_EQ(without_pins("pkcs11:token=t;object=k?module-path=/m.so&pin-value=12%3B34"),
            "pkcs11:token=t;object=k?module-path=/m.so&pin-value=(not shown)");
  EXPECT_EQ(without_pins("pkcs11:token=t;object=k?pin-value=987654&module-path=/m.so"),
            "pkcs11:token=t;object=k?pin-value=(not shown)&module-path=/m.so");
  EXPECT_EQ(without_pins("[checkpoint]\nkey = pkcs11:t?pin-value=1111\npolicy = p.json\n"
                         "[data]\nkey = pkcs11:t?pin-value=2222&module-path=/m.so\n"),
            "[checkpoint]\nkey = pkcs11:t?pin-value=(not shown)\npolicy = p.json\n"
            "[data]\nkey = pkcs11:t?pin-value=(not shown)&module-path=/m.so\n");
  EXPECT_EQ(without_pins("ends with pin-value="), "ends with pin-value=(not shown)");
}

// A checkpoint stores the recipe without its PIN, and printing that recipe again changes nothing.
TEST(WithoutPins, HidingTwiceIsHidingOnce) {
  for (const char* text : {"key = pkcs11:t?pin-value=1111 = true\n", "pkcs11:t?pin-value=(not shown)&module-path=/m.so",
                           "pin-value=(not shownx) y", "pin-value=(not"}) {
    const std::string once = without_pins(text);
    EXPECT_EQ(without_pins(once), once) << text;
  }
  EXPECT_EQ(without_pins("a pin-value=(not shown) shown) b"), "a pin-value=(not shown) shown) b");
}

TEST(WithoutPins, LeavesTextWithoutAPinAlone) {
  for (const char* text : {"", "file:/keys/kek", "pkcs11:token=t;object=k?pin-source=file:/run/pin",
                           "the pin-value attribute", "env:ALBION_KEK"}) {
    EXPECT_EQ(without_pins(text), text);
  }
}

}  // namespace
}  // namespace albion
