#include "sim/bookings.h"

#include <gtest/gtest.h>

namespace atrium::sim {
namespace {

TEST(BookingsCsvTest, ReadsColumnsInAnyOrderWithDefaults) {
  auto parsed = ParseBookingsCsv(
      "end_s,start_s,grant,nodes,one_group\n"
      "7200,3600,g1,2,1\n"
      "\n"
      "# maintenance\n"
      "10000,9000,,1,0  # trailing comment\n");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  ASSERT_EQ(parsed->size(), 2u);
  EXPECT_EQ((*parsed)[0].request.grant, "g1");
  EXPECT_EQ((*parsed)[0].request.nodes, 2);
  EXPECT_EQ((*parsed)[0].request.start_s, 3600);
  EXPECT_EQ((*parsed)[0].request.end_s, 7200);
  EXPECT_TRUE((*parsed)[0].request.one_group);
  EXPECT_EQ((*parsed)[0].booked_at_s, 0);
  EXPECT_EQ((*parsed)[1].request.grant, "");
  EXPECT_FALSE((*parsed)[1].request.one_group);
}

TEST(BookingsCsvTest, RefusesBadLinesNamingThem) {
  for (const char* text :
       {"", "grant,start_s\n", "grant,start_s,end_s,colour\n", "grant,start_s,end_s,grant\n",
        "grant,start_s,end_s\ng,10,x\n", "grant,start_s,end_s\ng,-1,5\n",
        "grant,start_s,end_s\ng,,5\n", "grant,start_s,end_s,one_group\ng,1,5,2\n",
        "grant,start_s,end_s\ng,1,5,7\n"}) {
    auto parsed = ParseBookingsCsv(text);
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_EQ(parsed.error().code, ErrorCode::kParseError) << text;
  }
  EXPECT_NE(ParseBookingsCsv("grant,start_s,end_s\ng,1,x\n").error().message.find("line 2"),
            std::string::npos);
}

}  // namespace
}  // namespace atrium::sim
