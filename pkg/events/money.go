package events

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// Money is an exact amount in major units with its ISO 4217 currency.
//
// Value is a canonical decimal string: an optional "-", digits, and an
// optional fraction (e.g. "100000.00", "99.5", "20000"). It never passes
// through float64. Trailing zeros are kept as the provider wrote them, so
// "20000.00" stays "20000.00"; use Cmp to compare values.
type Money struct {
	Value    string `json:"value"`
	Currency string `json:"currency"`
}

// ErrAmount reports a string that is not an exact decimal amount.
var ErrAmount = errors.New("invalid amount")

// maxAmountLen bounds the digits we accept; no real payment needs more
// than 40 characters and unbounded numbers are a denial-of-service lever.
const maxAmountLen = 40

// ParseMoney validates value as an exact decimal and returns it with the
// currency. Accepted: "120", "120.5", "-3.00", "0.0001". Rejected: exponents,
// leading "+", spaces, "NaN", empty strings, more than 40 characters.
func ParseMoney(value, currency string) (Money, error) {
	if err := checkDecimal(value); err != nil {
		return Money{}, err
	}
	return Money{Value: normalizeZero(value), Currency: currency}, nil
}

// MustMoney is ParseMoney for constants in tests and examples; it panics on a bad value.
func MustMoney(value, currency string) Money {
	m, err := ParseMoney(value, currency)
	if err != nil {
		panic(err)
	}
	return m
}

// MoneyFromMinor renders an integer count of minor units (as digits, e.g.
// a JSON number "10000000") with exp fraction digits: MoneyFromMinor("10000000", 2, "INR")
// is 100000.00 INR. minor must be an integer.
func MoneyFromMinor(minor string, exp int, currency string) (Money, error) {
	neg := strings.HasPrefix(minor, "-")
	digits := strings.TrimPrefix(minor, "-")
	if digits == "" || len(digits) > maxAmountLen || !allDigits(digits) || exp < 0 || exp > 18 {
		return Money{}, fmt.Errorf("%w: minor units %q", ErrAmount, minor)
	}
	digits = strings.TrimLeft(digits, "0")
	if len(digits) <= exp {
		digits = strings.Repeat("0", exp-len(digits)+1) + digits
	}
	v := digits
	if exp > 0 {
		v = digits[:len(digits)-exp] + "." + digits[len(digits)-exp:]
	}
	if neg {
		v = "-" + v
	}
	return Money{Value: normalizeZero(v), Currency: currency}, nil
}

// Cmp compares the two values exactly: -1, 0 or +1. Currencies are not
// compared; callers check them. Both values must be valid (ParseMoney).
func (m Money) Cmp(o Money) int {
	if checkDecimal(m.Value) == nil && checkDecimal(o.Value) == nil {
		return cmpDecimal(m.Value, o.Value)
	}
	a, okA := new(big.Rat).SetString(m.Value)
	b, okB := new(big.Rat).SetString(o.Value)
	if !okA || !okB {
		return strings.Compare(m.Value, o.Value)
	}
	return a.Cmp(b)
}

// cmpDecimal compares two valid decimal strings exactly without allocating
// (Cmp runs for every callback that carries a requested amount).
func cmpDecimal(a, b string) int {
	negA, negB := strings.HasPrefix(a, "-"), strings.HasPrefix(b, "-")
	a, b = strings.TrimPrefix(a, "-"), strings.TrimPrefix(b, "-")
	ai, af, _ := strings.Cut(a, ".")
	bi, bf, _ := strings.Cut(b, ".")
	ai, bi = strings.TrimLeft(ai, "0"), strings.TrimLeft(bi, "0")
	af, bf = strings.TrimRight(af, "0"), strings.TrimRight(bf, "0")
	zeroA, zeroB := ai == "" && af == "", bi == "" && bf == ""
	if zeroA && zeroB {
		return 0
	}
	if zeroA {
		negA = !negB // 0 vs b: sign of -b
	}
	if zeroB {
		negB = !negA
	}
	if negA != negB {
		if negA {
			return -1
		}
		return 1
	}
	c := 0
	switch {
	case len(ai) != len(bi):
		c = cmp.Compare(len(ai), len(bi))
	case ai != bi:
		c = strings.Compare(ai, bi)
	default:
		c = strings.Compare(af, bf) // fractions without trailing zeros compare lexically
	}
	if negA {
		return -c
	}
	return c
}

// Equal reports whether both amount and currency are the same.
func (m Money) Equal(o Money) bool { return m.Currency == o.Currency && m.Cmp(o) == 0 }

// IsZero reports whether m is the zero Money (no value at all).
func (m Money) IsZero() bool { return m.Value == "" && m.Currency == "" }

// Minor returns the amount as an integer count of minor units with exp
// fraction digits, failing if it has more precision than that.
func (m Money) Minor(exp int) (*big.Int, error) {
	r, ok := new(big.Rat).SetString(m.Value)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrAmount, m.Value)
	}
	r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(exp)), nil)))
	if !r.IsInt() {
		return nil, fmt.Errorf("%w: %q has more than %d fraction digits", ErrAmount, m.Value, exp)
	}
	return r.Num(), nil
}

// UnmarshalJSON accepts only a valid decimal value.
func (m *Money) UnmarshalJSON(b []byte) error {
	var raw struct {
		Value    json.Number `json:"value"`
		Currency string      `json:"currency"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	v, err := ParseMoney(string(raw.Value), raw.Currency)
	if err != nil {
		return err
	}
	*m = v
	return nil
}

func checkDecimal(s string) error {
	if s == "" || len(s) > maxAmountLen {
		return fmt.Errorf("%w: %q", ErrAmount, truncate(s))
	}
	body := strings.TrimPrefix(s, "-")
	intPart, frac, hasDot := strings.Cut(body, ".")
	if intPart == "" || !allDigits(intPart) || (hasDot && (frac == "" || !allDigits(frac))) {
		return fmt.Errorf("%w: %q", ErrAmount, truncate(s))
	}
	return nil
}

// normalizeZero turns "-0", "-0.00" into "0", "0.00" so equal amounts have one spelling of the sign.
func normalizeZero(s string) string {
	if strings.HasPrefix(s, "-") && strings.Trim(s[1:], "0.") == "" {
		return s[1:]
	}
	return s
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func truncate(s string) string {
	if len(s) > 24 {
		return s[:24] + "…"
	}
	return s
}
