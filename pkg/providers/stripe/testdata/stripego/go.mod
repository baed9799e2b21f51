module github.com/payhook/payhook/pkg/providers/stripe/testdata/stripego

go 1.23

require github.com/stripe/stripe-go/v82 v82.5.1
