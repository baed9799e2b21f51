package mrnpay

import (
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers/hostile"
)

// The one place that renders and signs MrnPay's callbacks: the simulator
// (sim.go), the bad-input corpus (hostile.go) and BuildPayinCallback /
// BuildPayoutCallback all post what these build.

// callbackForm is seed 003 "充值回调" (a pay-in) or "下发回调" (a payout)
// about order mrn of merchant appKey, unsigned, its fields in the order
// MrnPay posts them. channel and originAmount are the pay-in's only.
func callbackForm(kind events.Kind, appKey, mrn, channel, amount, originAmount string) hostile.Form {
	if kind == events.KindPayout {
		return hostile.Form{{K: "amount", V: amount}, {K: "appKey", V: appKey}, {K: "mrn", V: mrn}}
	}
	return hostile.Form{{K: "amount", V: amount}, {K: "appKey", V: appKey}, {K: "channel", V: channel},
		{K: "mrn", V: mrn}, {K: "originAmount", V: originAmount}}
}

// signForm is f (a copy) with its sign field, last, under key: SignPayout
// or SignPayin over the kind's fields as f carries them.
func signForm(kind events.Kind, f hostile.Form, key string) hostile.Form {
	f = f.Del("sign")
	if kind == events.KindPayout {
		return append(f, hostile.KV{K: "sign", V: SignPayout(f.Get("amount"), f.Get("appKey"), f.Get("mrn"), key)})
	}
	return append(f, hostile.KV{K: "sign", V: SignPayin(f.Get("amount"), f.Get("appKey"), f.Get("channel"), f.Get("mrn"), f.Get("originAmount"), key)})
}
