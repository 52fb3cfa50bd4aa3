package broker

import (
	"encoding/base64"
	"errors"
	"testing"
)

func checkDecodeErr(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var ae *apiError
	if !errors.As(err, &ae) || ae.status != 400 || len(ae.errs) == 0 {
		t.Fatalf("a bad request must be a 400 naming a field, got %v", err)
	}
}

// FuzzDecodePublishRequest: the publish decoder never panics and refuses
// with a 400 naming the field.
func FuzzDecodePublishRequest(f *testing.F) {
	pact := base64.StdEncoding.EncodeToString([]byte(`{"consumer":{"name":"web"},"provider":{"name":"orders"},"interactions":[]}`))
	f.Add([]byte(`{"pacticipantName":"web","pacticipantVersionNumber":"1","branch":"main","tags":["a"],"contracts":[{"consumerName":"web","providerName":"orders","specification":"pact","contentType":"application/json","content":"` + pact + `"}]}`))
	f.Add([]byte(`{"pacticipantName":"web","pacticipantVersionNumber":"1","contracts":[{"content":"!!"}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, pacts, raws, err := DecodePublishRequest(b)
		checkDecodeErr(t, err)
		if err == nil && (req == nil || len(pacts) == 0 || len(pacts) != len(raws)) {
			t.Fatal("accepted a request without pacts")
		}
	})
}

func FuzzDecodeForVerificationRequest(f *testing.F) {
	f.Add([]byte(`{"consumerVersionSelectors":[{"mainBranch":true},{"deployedOrReleased":true}],"providerVersionBranch":"main","includePendingStatus":true,"includeWipPactsSince":"2024-01-01"}`))
	f.Add([]byte(`{"consumerVersionSelectors":[{"branch":"x","tag":"y"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, err := DecodeForVerificationRequest(b)
		checkDecodeErr(t, err)
	})
}

func FuzzDecodeVerificationRequest(f *testing.F) {
	f.Add([]byte(`{"success":true,"providerApplicationVersion":"1","testResults":[{"interactionId":"a","success":true}],"verifiedBy":{"implementation":"x"}}`))
	f.Add([]byte(`{"success":"yes"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := DecodeVerificationRequest(b)
		checkDecodeErr(t, err)
	})
}

func FuzzDecodeEnvironmentRequest(f *testing.F) {
	f.Add([]byte(`{"name":"production","displayName":"Production","production":true}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := DecodeEnvironmentRequest(b)
		checkDecodeErr(t, err)
	})
}

func FuzzParseMatrixQuery(f *testing.F) {
	f.Add("q%5B%5D%5Bpacticipant%5D=web&q%5B%5D%5Bversion%5D=1&latestby=cvpv&environment=production")
	f.Add("q[][version]=1")
	f.Add("q[][pacticipant]=a&q[][latest]=true&q[][tag]=prod&q[][pacticipant]=b&q[][branch]=main")
	f.Fuzz(func(t *testing.T, raw string) {
		mq, err := ParseMatrixQuery(raw)
		checkDecodeErr(t, err)
		if err == nil && len(mq.Selectors) == 0 {
			t.Fatal("accepted a query without a selector")
		}
	})
}
