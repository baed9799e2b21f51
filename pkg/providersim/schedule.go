package providersim

import (
	"time"

	"github.com/payhook/payhook/pkg/providers/jpglo"
	"github.com/payhook/payhook/pkg/providers/mrnpay"
)

// Schedule is the delays between a provider's callback attempts: Schedule[i]
// is the wait after attempt i+1 failed before attempt i+2. len(Schedule) is
// the number of retries; after the last one fails the provider gives up.
type Schedule []time.Duration

// Total is the sum of the delays: how long after the first attempt the last retry happens.
func (s Schedule) Total() time.Duration {
	var t time.Duration
	for _, d := range s {
		t += d
	}
	return t
}

// Retry schedules, unscaled. Documented ones cite the seed; the others are
// assumptions, labelled as such.
var (
	// MrnpaySchedule is an ASSUMPTION: seed 003 says only that the merchant
	// must answer 200 "success". We use the schedule common to Chinese
	// payment platforms (WeChat Pay's notify schedule): 15 s, 15 s, 30 s,
	// 3 min, 10 min, 20 min, 30 min ×3, 1 h, 3 h ×3, 6 h ×2 — 15 retries,
	// the last about 24 h 4 min after the first.
	MrnpaySchedule = Schedule{
		15 * time.Second, 15 * time.Second, 30 * time.Second, 3 * time.Minute, 10 * time.Minute,
		20 * time.Minute, 30 * time.Minute, 30 * time.Minute, 30 * time.Minute, time.Hour,
		3 * time.Hour, 3 * time.Hour, 3 * time.Hour, 6 * time.Hour, 6 * time.Hour,
	}

	// JpgloSchedule is an ASSUMPTION: seed 004 gives the reply
	// {"status":0,"msg":"处理成功"} but no retry policy. We assume a short
	// back-off of 1, 3, 10, 30 min, 1, 2 and 6 h — 7 retries, the last
	// 9 h 44 min after the first.
	JpgloSchedule = Schedule{
		time.Minute, 3 * time.Minute, 10 * time.Minute, 30 * time.Minute,
		time.Hour, 2 * time.Hour, 6 * time.Hour,
	}
)

// ScheduleFor returns the retry schedule of provider, unscaled. fantian
// sends no callbacks and has none.
func ScheduleFor(provider string) Schedule {
	if sp, ok := simulated[provider]; ok {
		return sp.SimRetries()
	}
	switch provider {
	case mrnpay.Name:
		return MrnpaySchedule
	case jpglo.Name:
		return JpgloSchedule
	}
	return nil
}

// scale compresses d by the time scale, keeping at least a microsecond so a
// retry never spins.
func scale(d time.Duration, ts float64) time.Duration {
	s := time.Duration(float64(d) * ts)
	if s < time.Microsecond {
		s = time.Microsecond
	}
	return s
}
