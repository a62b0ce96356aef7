module stsecrets

go 1.22
