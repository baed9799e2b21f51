package mrnpay

import (
	"github.com/payhook/payhook/pkg/events"
	"github.com/payhook/payhook/pkg/providers/internal/md5sign"
)

// SignPayin is the pay-in callback signature (seed "回调签名说明"):
// md5("amount={amount}&appKey={appKey}&channel={channel}&mrn={mrn}&originAmount={originAmount}&key={key}"),
// lower-case hex. amount is what the payer paid, originAmount what was asked.
func SignPayin(amount, appKey, channel, mrn, originAmount, key string) string {
	return md5Hex("amount=" + amount + "&appKey=" + appKey + "&channel=" + channel + "&mrn=" + mrn + "&originAmount=" + originAmount + "&key=" + key)
}

// SignPayout is the payout callback signature (seed "下发回调签名说明"):
// md5("amount={amount}&appKey={appKey}&mrn={mrn}&key={key}"), lower-case hex.
func SignPayout(amount, appKey, mrn, key string) string {
	return md5Hex("amount=" + amount + "&appKey=" + appKey + "&mrn=" + mrn + "&key=" + key)
}

// SignQuery is the query signature for both pay-ins and payouts (seed
// "充值查单接口说明"): md5("appKey={appKey}&mrn={mrn}&key={key}"), lower-case hex.
func SignQuery(appKey, mrn, key string) string {
	return md5Hex("appKey=" + appKey + "&mrn=" + mrn + "&key=" + key)
}

// md5Hex is the seed's hash step: MD5, lower-case hex.
func md5Hex(s string) string { return md5sign.Lower(s) }

// BuildPayinCallback renders a signed pay-in callback body as mrnpay posts
// it (application/x-www-form-urlencoded), for simulators and load tests.
func BuildPayinCallback(appKey, key, mrn, channel, amount, originAmount string) []byte {
	return signForm(events.KindPayin, callbackForm(events.KindPayin, appKey, mrn, channel, amount, originAmount), key).Render()
}

// BuildPayoutCallback renders a signed payout callback body as mrnpay posts it.
func BuildPayoutCallback(appKey, key, mrn, amount string) []byte {
	return signForm(events.KindPayout, callbackForm(events.KindPayout, appKey, mrn, "", amount, ""), key).Render()
}
