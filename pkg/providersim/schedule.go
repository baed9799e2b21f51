package providersim

import (
	"time"
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

// ScheduleFor returns the retry schedule of provider, unscaled: its
// simulated side's (providers.Simulated.SimRetries, next to the provider's
// own code with the arithmetic); nil for a provider that sends no callbacks
// or has no simulated side.
func ScheduleFor(provider string) Schedule {
	if sp, ok := simulated[provider]; ok {
		return sp.SimRetries()
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
