"""Every business rule of Hoa Đẹp. Knows nothing of Telegram."""
