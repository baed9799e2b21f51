package ingress

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// BenchmarkRejectLimiterNewAddress is one rejection from a new address,
// with the limiter's map empty and with it full (limiterMaxAddresses
// buckets, none refilled): the two cost about the same, since a new
// address with the map full goes straight to the overflow bucket, with no
// walk over the buckets under the mutex.
func BenchmarkRejectLimiterNewAddress(b *testing.B) {
	now := time.Unix(1700000000, 0)
	for _, full := range []bool{false, true} {
		name := "empty"
		if full {
			name = "full"
		}
		b.Run(name, func(b *testing.B) {
			l := newRejectLimiter(10, 100)
			if full {
				for i := 0; i < limiterMaxAddresses; i++ {
					l.allow(fmt.Sprintf("2001:db8:%x:%x::1", i>>8, i&0xff), now)
				}
			}
			addrs := make([]string, b.N)
			for i := range addrs {
				addrs[i] = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String()
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// Within the minute: only the new-address path is measured.
				l.allow(addrs[i], now.Add(time.Duration(i%1000)*time.Millisecond))
			}
		})
	}
}
