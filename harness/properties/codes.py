"""Real codes the generators use: SNOMED CT concepts and dm+d products (all Verhoeff-valid).

Shared by the Hypothesis strategies and the reference supplier's generator.
"""

from __future__ import annotations

SCT = "http://snomed.info/sct"
DMD = "https://dmd.nhs.uk"
VERIFICATION_EXT = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus"
RELATIONSHIP_CS = "https://fhir.hl7.org.uk/CodeSystem/UKCore-AdditionalPersonRelationshipRole"
ALLERGY_CLINICAL_CS = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ORG_TYPE_CS = "http://terminology.hl7.org/CodeSystem/organization-type"

MEDICINES = [("39732311000001104", "Amoxicillin 250mg capsules"),
             ("11278411000001109", "Influenza vaccine (split virion, inactivated) suspension for injection")]
ALLERGIES = [("372687004", "Amoxicillin"), ("91936005", "Allergy to penicillin"),
             ("409137002", "No known drug allergy")]
OBSERVATIONS = [("364075005", "Heart rate", "/min", 60, 100), ("27113001", "Body weight", "kg", 45, 95),
                ("386725007", "Body temperature", "Cel", 36, 38)]
CARE_PLAN = ("734163000", "Care plan")
DECLINED = ("182895007", "Drug declined by patient")
NO_KNOWN_ALLERGY = ("716186003", "No known allergy")
ETHNIC_EXT = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory"
ETHNIC_CS = "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategoryEngland"
ETHNIC_CATEGORIES = [("A", "White - British"), ("H", "Asian or Asian British - Indian"),
                     ("N", "Black or Black British - African"), ("Z", "Not stated")]
BCP47 = "urn:ietf:bcp:47"
LANGUAGES = [("en", "English"), ("pl", "Polish"), ("pa", "Panjabi")]  # all in R4 CommonLanguages (preferred)
# Communication needs: no national code list was available, so these codes are the project's own.
NEED_CS = "https://care-assure.example/CodeSystem/communication-need"
NEEDS = [("large-print", "Needs information in large print"), ("bsl", "Uses British Sign Language"),
         ("easy-read", "Needs information in easy read")]
# PRSB About Me: the questionnaire (canonical ends with SNOMED CT 1515851000000101 |About me|) and the
# link id of its 'Supported to write this by' item; the headings' link ids are in the pack (ABOUTME-001).
ABOUT_ME_QUESTIONNAIRE = "https://example.fhir.nhs.uk/Questionnaire/1515851000000101"
ABOUT_ME_SUPPORTED_BY = "1380289675401"


def narrative(resource_type: str) -> dict[str, str]:
    """A minimal generated narrative (dom-6 asks every resource for one); it names no one."""
    return {"status": "generated",
            "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><p>{resource_type} record</p></div>'}
