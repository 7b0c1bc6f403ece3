package authchain_test

import (
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/protocol/dcl/authchain"
)

func TestParseExpiration(t *testing.T) {
	utc := func(y int, mo time.Month, d, h, mi, s, ms int) time.Time {
		return time.Date(y, mo, d, h, mi, s, ms*int(time.Millisecond), time.UTC)
	}
	cases := []struct {
		in   string
		want time.Time
	}{
		{"2020-01-20T22:57:11.334Z", utc(2020, 1, 20, 22, 57, 11, 334)},
		{"3021-10-16T22:32:29.626Z", utc(3021, 10, 16, 22, 32, 29, 626)},
		{"2020-01-20T22:57:11Z", utc(2020, 1, 20, 22, 57, 11, 0)},
		{"2020-01-20T23:57:11.334+01:00", utc(2020, 1, 20, 22, 57, 11, 334)},
		{"2020-01-20T22:57:11.334", utc(2020, 1, 20, 22, 57, 11, 334)},
		{"2020-01-20T22:57", utc(2020, 1, 20, 22, 57, 0, 0)},
		{"2020-01-20", utc(2020, 1, 20, 0, 0, 0, 0)},
		{"Tue Aug 06 7112 10:14:51 GMT-0300 (Argentina Standard Time)", utc(7112, 8, 6, 13, 14, 51, 0)},
		{"Tue Aug 06 7112 10:14:51 GMT-0300", utc(7112, 8, 6, 13, 14, 51, 0)},
		{"Mon Jan 20 2020 22:57:11 GMT+0000 (Coordinated Universal Time)", utc(2020, 1, 20, 22, 57, 11, 0)},
		{"Tue, 06 Aug 7112 13:14:51 GMT", utc(7112, 8, 6, 13, 14, 51, 0)},
		{" 2020-01-20T22:57:11.334Z ", utc(2020, 1, 20, 22, 57, 11, 334)},
	}
	for _, tc := range cases {
		got, ok := authchain.ParseExpiration(tc.in)
		if !ok || !got.Equal(tc.want) {
			t.Errorf("ParseExpiration(%q) = %v, %v; want %v", tc.in, got, ok, tc.want)
		}
	}
	for _, bad := range []string{"", "someday", "NaN", "1700000000000", "2020-13-01", "2020-01-20T25:00:00Z", "(Argentina Standard Time)"} {
		if got, ok := authchain.ParseExpiration(bad); ok {
			t.Errorf("ParseExpiration(%q) = %v, want failure", bad, got)
		}
	}
}
