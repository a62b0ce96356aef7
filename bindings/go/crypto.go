package stsecrets

/*
#include "st_secrets.h"
*/
import "C"

func cryptoCall(fn func(out **C.st_buf, err **C.st_error) C.st_result) (string, error) {
	var out *C.st_buf
	var err *C.st_error
	if rc := fn(&out, &err); rc != C.ST_OK {
		return "", failure(rc, err)
	}
	return string(takeBuf(out)), nil
}

// Encrypt returns SimpleTuner's stored form (Z0FBQUFB...) of plaintext,
// under the process credential key (SIMPLETUNER_CREDENTIAL_KEY, the key
// file, or a generated one).
func Encrypt(plaintext string) (string, error) {
	p, free, cerr := cstring("plaintext", plaintext)
	if cerr != nil {
		return "", cerr
	}
	defer free()
	return cryptoCall(func(o **C.st_buf, e **C.st_error) C.st_result { return C.st_encrypt(p, o, e) })
}

// Decrypt opens a stored ciphertext (or a bare Fernet token); ErrInvalidToken
// for a wrong key or tampered data.
func Decrypt(ciphertext string) (string, error) {
	c, free, cerr := cstring("ciphertext", ciphertext)
	if cerr != nil {
		return "", cerr
	}
	defer free()
	return cryptoCall(func(o **C.st_buf, e **C.st_error) C.st_result { return C.st_decrypt(c, o, e) })
}

// EncryptWithSecret encrypts under an explicit master secret.
func EncryptWithSecret(secret, plaintext string) (string, error) {
	s, freeS, cerr := cstring("secret", secret)
	if cerr != nil {
		return "", cerr
	}
	defer freeS()
	p, freeP, cerr := cstring("plaintext", plaintext)
	if cerr != nil {
		return "", cerr
	}
	defer freeP()
	return cryptoCall(func(o **C.st_buf, e **C.st_error) C.st_result { return C.st_encrypt_with_secret(s, p, o, e) })
}

// DecryptWithSecret decrypts under an explicit master secret.
func DecryptWithSecret(secret, ciphertext string) (string, error) {
	s, freeS, cerr := cstring("secret", secret)
	if cerr != nil {
		return "", cerr
	}
	defer freeS()
	c, freeC, cerr := cstring("ciphertext", ciphertext)
	if cerr != nil {
		return "", cerr
	}
	defer freeC()
	return cryptoCall(func(o **C.st_buf, e **C.st_error) C.st_result { return C.st_decrypt_with_secret(s, c, o, e) })
}

// Reencrypt returns the credential under the current key (unchanged if it
// already is).
func Reencrypt(ciphertext string) (string, error) {
	c, free, cerr := cstring("ciphertext", ciphertext)
	if cerr != nil {
		return "", cerr
	}
	defer free()
	return cryptoCall(func(o **C.st_buf, e **C.st_error) C.st_result { return C.st_reencrypt(c, o, e) })
}

// ResetCrypto forgets the cached key; it is sourced again at next use.
func ResetCrypto() { C.st_crypto_reset() }
