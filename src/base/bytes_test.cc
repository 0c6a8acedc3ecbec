#include "base/bytes.h"

#include <gtest/gtest.h>

#include <limits>

namespace atrium {
namespace {

TEST(BytesTest, FixedWidthRoundTripsLittleEndian) {
  std::string out;
  ByteWriter writer(&out);
  writer.Put<uint32_t>(0x01020304);
  writer.Put<int64_t>(-2);
  writer.Put<Id128>(kIdMax - 1);
  EXPECT_EQ(out.substr(0, 4), std::string("\x04\x03\x02\x01", 4));
  ByteReader reader(out);
  EXPECT_EQ(reader.Get<uint32_t>(), 0x01020304u);
  EXPECT_EQ(reader.Get<int64_t>(), -2);
  EXPECT_EQ(reader.Get<Id128>(), kIdMax - 1);
  EXPECT_TRUE(reader.ok());
  EXPECT_TRUE(reader.at_end());
  EXPECT_EQ(reader.Get<uint8_t>(), 0);
  EXPECT_FALSE(reader.ok());
}

TEST(BytesTest, VarintsRoundTripAtTheEdges) {
  std::string out;
  ByteWriter writer(&out);
  const std::vector<Id128> ids = {0, 1, 127, 128, 16383, 16384, Id128{1} << 64, kIdMax};
  for (Id128 id : ids) writer.PutVarint<Id128>(id);
  const std::vector<int64_t> signed_values = {
      0, -1, 1, -64, 64, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()};
  for (int64_t value : signed_values) writer.PutZigzag(value);
  writer.PutVarint<uint16_t>(0xFFFF);
  ByteReader reader(out);
  for (Id128 id : ids) EXPECT_EQ(reader.GetVarint<Id128>(), id);
  for (int64_t value : signed_values) EXPECT_EQ(reader.GetZigzag(), value);
  EXPECT_EQ(reader.GetVarint<uint16_t>(), 0xFFFF);
  EXPECT_TRUE(reader.ok());
  EXPECT_TRUE(reader.at_end());

  std::string small;
  ByteWriter(&small).PutVarint<uint32_t>(300);
  EXPECT_EQ(small, std::string("\xAC\x02", 2));
}

TEST(BytesTest, MalformedVarintsFail) {
  // Truncated, non-minimal, and too large for the type.
  for (const std::string& bad :
       {std::string("\x80", 1), std::string("\x80\x00", 2), std::string("\xFF\xFF\x04", 3)}) {
    ByteReader reader(bad);
    (void)reader.GetVarint<uint16_t>();
    EXPECT_FALSE(reader.ok()) << bad.size();
  }
  std::string eleven(10, '\xFF');
  eleven += '\x01';
  ByteReader reader(eleven);
  (void)reader.GetVarint<uint64_t>();
  EXPECT_FALSE(reader.ok());
}

TEST(BytesTest, CountsLargerThanTheInputAreRefused) {
  std::string out;
  ByteWriter(&out).Put<uint32_t>(1'000'000);
  out += "abc";
  ByteReader reader(out);
  EXPECT_EQ(reader.GetCount(1), 0u);
  EXPECT_FALSE(reader.ok());
}

}  // namespace
}  // namespace atrium
