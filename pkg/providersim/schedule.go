package providersim

import (
	"time"

	"github.com/payhook/payhook/pkg/providers/jpglo"
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
