-- Secret variables may now hold enc:v2 ciphertexts (bound to their project and name, shared.security.Binding)
-- as well as the enc:v1 ones written before, until `python -m shared.rekey` has rewritten them.
alter table project_variables drop constraint if exists project_variables_check;
alter table project_variables add constraint project_variables_secret_is_encrypted
    check (not is_secret or value like 'enc:v1:%' or value like 'enc:v2:%');
